//! Which worker gets the next connection: the balancing policies (`lb`) as
//! a pure decision over the workers' current loads, unit-tested without
//! sockets or processes.

pub use crate::spec::LoadBalance as Policy;

/// A worker that already has this many connections handed to it and not
/// yet acknowledged gets no more: a stuck worker cannot hoard connections
/// (they wait in the backlog, or go to the others).
pub const MAX_PENDING: u32 = 64;

/// One worker as the decision sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Stable for the worker's life; the round-robin order.
    pub token: u64,
    /// Connections the worker holds open now.
    pub open: u64,
    /// Handed to it, not acknowledged yet.
    pub pending: u32,
}

impl Candidate {
    fn can_take(&self) -> bool {
        self.pending < MAX_PENDING
    }

    fn load(&self) -> u64 {
        self.open + u64::from(self.pending)
    }
}

/// What is known about the connection beyond its arrival.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hint {
    /// The worker that holds the client's session (sticky by sid).
    pub owner: Option<u64>,
    /// A hash of the client's address (sticky by IP).
    pub client: Option<u64>,
}

/// The balancer's memory between decisions.
#[derive(Debug, Clone, Default)]
pub struct Balancer {
    /// The token of the last worker chosen: the next turn starts after it.
    last: Option<u64>,
}

impl Balancer {
    /// The worker for the next connection, or None when no worker can take
    /// one (the caller then stops accepting). `workers` in any order.
    pub fn pick(&mut self, policy: Policy, workers: &[Candidate], hint: Hint) -> Option<u64> {
        // A session's requests must reach the worker that holds it: while
        // that worker is at its limit of unacknowledged connections, wait
        // for it (any other worker would answer "Session ID unknown").
        if let (Policy::Sticky, Some(t)) = (policy, hint.owner) {
            if workers.iter().any(|w| w.token == t && !w.can_take()) {
                return None;
            }
        }
        let mut able: Vec<&Candidate> = workers.iter().filter(|w| w.can_take()).collect();
        if able.is_empty() {
            return None;
        }
        able.sort_by_key(|w| w.token);
        let chosen = match policy {
            Policy::RoundRobin | Policy::Shared => self.next_turn(&able),
            Policy::LeastConnections => self.least(&able),
            Policy::Sticky => match hint {
                Hint { owner: Some(t), .. } if able.iter().any(|w| w.token == t) => t,
                Hint {
                    client: Some(h), ..
                } => able[(h % able.len() as u64) as usize].token,
                _ => self.least(&able),
            },
        };
        self.last = Some(chosen);
        Some(chosen)
    }

    /// The first worker after the last one chosen, wrapping around.
    fn next_turn(&self, sorted: &[&Candidate]) -> u64 {
        let after = sorted
            .iter()
            .find(|w| self.last.is_none_or(|l| w.token > l))
            .unwrap_or(&sorted[0]);
        after.token
    }

    /// The least loaded; among equals, the next in turn, so equal workers
    /// alternate rather than the first one taking every tie.
    fn least(&self, sorted: &[&Candidate]) -> u64 {
        let min = sorted.iter().map(|w| w.load()).min().unwrap_or(0);
        let ties: Vec<&Candidate> = sorted.iter().copied().filter(|w| w.load() == min).collect();
        self.next_turn(&ties)
    }
}

/// A client address as a number for sticky-by-IP: FNV-1a, stable across
/// restarts of the supervisor (unlike std's randomly keyed hasher).
pub fn client_hash(ip: &std::net::IpAddr) -> u64 {
    let bytes: Vec<u8> = match ip {
        std::net::IpAddr::V4(a) => a.octets().to_vec(),
        std::net::IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => a.octets().to_vec(),
        },
    };
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(token: u64, open: u64, pending: u32) -> Candidate {
        Candidate {
            token,
            open,
            pending,
        }
    }

    fn counts(policy: Policy, n: usize, conns: usize) -> Vec<usize> {
        let workers: Vec<Candidate> = (0..n as u64).map(|t| w(t + 1, 0, 0)).collect();
        let mut b = Balancer::default();
        let mut got = vec![0; n];
        for _ in 0..conns {
            let t = b.pick(policy, &workers, Hint::default()).unwrap();
            got[(t - 1) as usize] += 1;
        }
        got
    }

    #[test]
    fn round_robin_takes_turns_and_survives_a_changing_set() {
        assert_eq!(counts(Policy::RoundRobin, 4, 40), vec![10; 4]);
        let mut b = Balancer::default();
        let two = [w(3, 0, 0), w(7, 0, 0)];
        assert_eq!(b.pick(Policy::RoundRobin, &two, Hint::default()), Some(3));
        // Worker 3 left and 5 joined: the turn goes on after 3.
        let changed = [w(7, 0, 0), w(5, 0, 0)];
        assert_eq!(
            b.pick(Policy::RoundRobin, &changed, Hint::default()),
            Some(5)
        );
        assert_eq!(
            b.pick(Policy::RoundRobin, &changed, Hint::default()),
            Some(7)
        );
        assert_eq!(
            b.pick(Policy::RoundRobin, &changed, Hint::default()),
            Some(5)
        );
    }

    #[test]
    fn least_connections_fills_the_emptiest_and_alternates_ties() {
        let mut b = Balancer::default();
        let ws = [w(1, 5, 0), w(2, 1, 1), w(3, 3, 0)];
        assert_eq!(
            b.pick(Policy::LeastConnections, &ws, Hint::default()),
            Some(2)
        );
        assert_eq!(counts(Policy::LeastConnections, 2, 10), vec![5, 5]);
    }

    #[test]
    fn a_worker_with_too_many_unacknowledged_is_skipped_and_none_means_wait() {
        let mut b = Balancer::default();
        let ws = [w(1, 0, MAX_PENDING), w(2, 9, 0)];
        assert_eq!(b.pick(Policy::RoundRobin, &ws, Hint::default()), Some(2));
        assert_eq!(b.pick(Policy::RoundRobin, &ws, Hint::default()), Some(2));
        let stuck = [w(1, 0, MAX_PENDING)];
        assert_eq!(
            b.pick(Policy::LeastConnections, &stuck, Hint::default()),
            None
        );
        assert_eq!(b.pick(Policy::RoundRobin, &[], Hint::default()), None);
    }

    #[test]
    fn a_session_waits_for_its_busy_worker_rather_than_going_elsewhere() {
        let mut b = Balancer::default();
        let busy = [w(1, 0, MAX_PENDING), w(2, 0, 0)];
        let owned = Hint {
            owner: Some(1),
            client: Some(0),
        };
        assert_eq!(b.pick(Policy::Sticky, &busy, owned), None);
        // Its worker gone: the client's address decides.
        let gone = [w(2, 0, 0), w(3, 0, 0)];
        assert!(b.pick(Policy::Sticky, &gone, owned).is_some());
        // Other connections still go to whoever can take them.
        assert_eq!(b.pick(Policy::Sticky, &busy, Hint::default()), Some(2));
    }

    #[test]
    fn sticky_follows_the_session_then_the_client_then_the_load() {
        let mut b = Balancer::default();
        let ws = [w(1, 0, 0), w(2, 10, 0), w(3, 10, 0)];
        let owner = Hint {
            owner: Some(3),
            client: None,
        };
        assert_eq!(b.pick(Policy::Sticky, &ws, owner), Some(3));
        // The session's worker is gone: by client, the same worker each time.
        let gone = Hint {
            owner: Some(9),
            client: Some(client_hash(&"10.0.0.7".parse().unwrap())),
        };
        let first = b.pick(Policy::Sticky, &ws, gone);
        for _ in 0..5 {
            assert_eq!(b.pick(Policy::Sticky, &ws, gone), first);
        }
        assert_eq!(b.pick(Policy::Sticky, &ws, Hint::default()), Some(1));
    }

    #[test]
    fn client_hash_treats_mapped_v4_as_v4() {
        let v4: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: std::net::IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(client_hash(&v4), client_hash(&mapped));
        assert_ne!(client_hash(&v4), client_hash(&"127.0.0.2".parse().unwrap()));
    }

    #[test]
    fn policy_names_round_trip_and_a_typo_lists_them() {
        for n in Policy::NAMES {
            assert_eq!(n.parse::<Policy>().unwrap().as_str(), n);
        }
        let e = "roundrobin".parse::<Policy>().unwrap_err();
        assert!(
            e.contains("round-robin, least-connections, sticky, shared"),
            "{e}"
        );
    }
}
