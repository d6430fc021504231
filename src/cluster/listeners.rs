//! The listening sockets of one cluster app, bound by the supervisor and kept
//! open while any instance of the app is running or about to restart; with
//! a balancing policy each socket has its distributor (the accept loop).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{json, Value};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::task::JoinHandle;

use super::balance::Policy;
use super::distribute::Distributor;
use super::message::ServerQuery;
use super::sessions::Sessions;
use super::steered::{parse_slot_key, Claim, Keep, SlotName, SteeredGroup};

enum Kind {
    Tcp(Socket),
    Unix(Socket, PathBuf),
}

struct Listener {
    kind: Kind,
    /// The accept loop, for a balanced app.
    balanced: Option<(Arc<Distributor>, JoinHandle<()>)>,
    /// Its name in the daemon's keeper, which holds a duplicate.
    kept_as: Option<String>,
}

/// How a worker gets the connections of the socket it asked for.
pub enum Joined {
    /// It accepts from this socket itself (`shared`).
    Shared(OwnedFd),
    /// The supervisor accepts and hands each connection over; `sockname` is
    /// what the worker's `server.address()` returns.
    Balanced {
        dist: Arc<Distributor>,
        sockname: Option<Value>,
    },
    /// It accepts from a socket of its own in this group, which the kernel
    /// steers connections to in turn (`round-robin`, see `steered`).
    Steered(Arc<SteeredGroup>),
}

impl Listener {
    fn socket(&self) -> &Socket {
        match &self.kind {
            Kind::Tcp(s) | Kind::Unix(s, _) => s,
        }
    }

    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.socket().as_fd()
    }

    fn sockname(&self) -> Option<Value> {
        let Kind::Tcp(s) = &self.kind else {
            return None;
        };
        let a = s.local_addr().ok()?.as_socket()?;
        Some(json!({
            "address": a.ip().to_string(),
            "family": if a.is_ipv6() { "IPv6" } else { "IPv4" },
            "port": a.port(),
        }))
    }

    fn local(&self) -> String {
        match &self.kind {
            Kind::Tcp(s) => s
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .map(|a| a.to_string())
                .unwrap_or_default(),
            Kind::Unix(_, p) => p.display().to_string(),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some((_, task)) = self.balanced.take() {
            task.abort();
        }
        // Closed everywhere before the path goes (or the port is bound again).
        if let Some(tag) = self.kept_as.take() {
            crate::keeper::client::forget_and_wait(&tag);
        }
        if let Kind::Unix(_, path) = &self.kind {
            // Node's own primary (libuv) unlinks a pipe path when it closes it.
            let _ = std::fs::remove_file(path);
        }
    }
}

#[derive(Default)]
struct Inner {
    sockets: HashMap<String, Listener>,
    /// The kernel-steered addresses (`round-robin` where the kernel allows).
    steered: HashMap<String, Arc<SteeredGroup>>,
    active: usize,
}

/// The key prefix of the socket served for `setupWorker` apps
/// (`join_sticky_primary`), which names the kind of its accept loop when
/// a next daemon takes the socket over.
const STICKY_PRIMARY: &str = "sticky-primary:";

pub struct ListenerPool {
    policy: Policy,
    /// Engine.IO sessions of the app's workers, for `sticky`.
    pub sessions: Arc<Sessions>,
    /// Messages between the app's workers (Socket.IO's cluster packages).
    pub relay: super::relay::Relay,
    inner: Mutex<Inner>,
    /// The app's name, which names its sockets in the daemon's keeper.
    owner: Mutex<Option<String>>,
}

/// Held by each instance while it runs or waits to restart; the sockets
/// close when the last guard goes.
pub struct ActiveGuard {
    pool: Arc<ListenerPool>,
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        let mut inner = self.pool.lock();
        inner.active = inner.active.saturating_sub(1);
        if inner.active == 0 {
            inner.sockets.clear();
            inner.steered.clear();
        }
    }
}

impl ListenerPool {
    pub fn new(policy: Policy) -> Arc<Self> {
        Arc::new(ListenerPool {
            policy,
            sessions: Arc::default(),
            relay: Default::default(),
            inner: Mutex::default(),
            owner: Mutex::default(),
        })
    }

    pub fn policy(&self) -> Policy {
        self.policy
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn acquire(self: &Arc<Self>) -> ActiveGuard {
        self.lock().active += 1;
        ActiveGuard { pool: self.clone() }
    }

    /// The socket for `query`, bound on first use (and its accept loop
    /// started, for a balanced app): a duplicate for a `shared` app, the
    /// distributor otherwise. The error is the OS errno, which the worker
    /// will see as its own.
    pub fn join(&self, query: &ServerQuery) -> Result<Joined, i32> {
        let key = query.key();
        let mut inner = self.lock();
        if self.steers(query) {
            return self.steered(&mut inner, query, key);
        }
        if !inner.sockets.contains_key(&key) {
            let mut l = Listener {
                kind: bind(query, false).map_err(errno)?,
                balanced: None,
                kept_as: None,
            };
            self.balance(&key, &mut l).map_err(errno)?;
            self.keep(&key, &mut l);
            inner.sockets.insert(key.clone(), l);
        }
        let Some(l) = inner.sockets.get(&key) else {
            return Err(EINVAL);
        };
        match &l.balanced {
            Some((dist, _)) => Ok(Joined::Balanced {
                dist: dist.clone(),
                sockname: l.sockname(),
            }),
            None => l
                .fd()
                .try_clone_to_owned()
                .map(Joined::Shared)
                .map_err(errno),
        }
    }

    /// Whether the kernel distributes this address's connections: a TCP
    /// address of a `round-robin` app, where the kernel loads the program.
    fn steers(&self, q: &ServerQuery) -> bool {
        self.policy == Policy::RoundRobin
            && !q.is_path()
            && q.fd.is_none()
            && super::reuseport::available()
    }

    /// The group of a steered address, made on first use, and a slot of it
    /// for the worker.
    fn steered(&self, inner: &mut Inner, q: &ServerQuery, key: String) -> Result<Joined, i32> {
        let group = match inner.steered.get(&key) {
            Some(g) => g.clone(),
            None => {
                // Claimed before listening, so the socket never joins
                // another app's group (a `listen(0)` gets a fresh port).
                let wanted = requested(q).map_err(errno)?;
                let early = (wanted.port() != 0)
                    .then(|| Claim::take(wanted))
                    .transpose()
                    .map_err(errno)?;
                let first = match bind(q, true).map_err(errno)? {
                    Kind::Tcp(s) => s,
                    Kind::Unix(..) => return Err(EINVAL),
                };
                let claim = match early {
                    Some(c) => c,
                    None => Claim::take(local_addr(&first).map_err(errno)?).map_err(errno)?,
                };
                let g = self
                    .new_group(key.clone(), first, None, claim, q.ipv6_only, q.backlog)
                    .map_err(errno)?;
                inner.steered.insert(key, g.clone());
                g
            }
        };
        Ok(Joined::Steered(group))
    }

    fn new_group(
        &self,
        key: String,
        first: Socket,
        kept_as: Option<String>,
        claim: Claim,
        v6_only: bool,
        backlog: i32,
    ) -> io::Result<Arc<SteeredGroup>> {
        let bind = Box::new(move |addr: SocketAddr| {
            let s = bind_tcp(addr, v6_only, true)?;
            s.listen(backlog)?;
            Ok(s)
        });
        SteeredGroup::new(
            key,
            first,
            kept_as,
            claim,
            self.sessions.clone(),
            bind,
            self.keeper(),
        )
    }

    /// How a new socket is given to the daemon's keeper, so that it
    /// outlives this daemon with its backlog (see `adopt`): by its name.
    fn keeper(&self) -> Keep {
        let owner = self.owner.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Box::new(move |name: &str, fd: std::os::fd::BorrowedFd<'_>| {
            let app = owner
                .as_ref()
                .filter(|_| crate::keeper::client::attached())?;
            let tag = crate::keeper::client::tags::listen(app, name);
            crate::keeper::client::keep(&tag, fd);
            Some(tag)
        })
    }

    /// The socket the supervisor serves itself for workers that call
    /// `@socket.io/sticky`'s `setupWorker` and never `listen()` (the setup
    /// of the Socket.IO docs for `@socket.io/pm2`, whose daemon listens in
    /// their place): bound on first use, any address, and routed by session
    /// whatever the app's `lb`, since Engine.IO needs it.
    pub fn join_sticky_primary(&self, port: u16) -> Result<(Arc<Distributor>, String), i32> {
        let key = format!("{STICKY_PRIMARY}{port}");
        let mut inner = self.lock();
        if !inner.sockets.contains_key(&key) {
            let q = ServerQuery {
                seq: 0,
                address: None,
                port: i64::from(port),
                address_type: 4,
                fd: None,
                index: 0,
                ipv6_only: false,
                backlog: 511,
            };
            let mut l = Listener {
                kind: bind(&q, false).map_err(errno)?,
                balanced: None,
                kept_as: None,
            };
            self.balance(&key, &mut l).map_err(errno)?;
            self.keep(&key, &mut l);
            inner.sockets.insert(key.clone(), l);
        }
        match inner.sockets.get(&key) {
            Some(Listener {
                balanced: Some((dist, _)),
                kind,
                ..
            }) => {
                let local = match kind {
                    Kind::Tcp(s) => s
                        .local_addr()
                        .ok()
                        .and_then(|a| a.as_socket())
                        .map(|a| format!("*:{}", a.port()))
                        .unwrap_or_default(),
                    Kind::Unix(_, p) => p.display().to_string(),
                };
                Ok((dist.clone(), local))
            }
            _ => Err(EINVAL),
        }
    }

    /// Starts the accept loop of a new socket: the sticky primary's (by
    /// its key), or the app's policy's for a balanced app.
    fn balance(&self, key: &str, l: &mut Listener) -> io::Result<()> {
        let dist = if key.starts_with(STICKY_PRIMARY) {
            Distributor::new_sticky_primary(key.to_owned(), self.sessions.clone())
        } else if self.policy != Policy::Shared {
            Distributor::new(key.to_owned(), self.policy, self.sessions.clone())
        } else {
            return Ok(());
        };
        let dup = l.socket().try_clone()?;
        let task = dist.spawn(dup)?;
        l.balanced = Some((dist, task));
        Ok(())
    }

    /// Gives the daemon's keeper a duplicate of a socket just bound, so
    /// that it outlives this daemon with its backlog (see `adopt`).
    fn keep(&self, key: &str, l: &mut Listener) {
        l.kept_as = self.keeper()(key, l.fd());
    }

    /// Names the app whose sockets these are (for the daemon's keeper).
    pub fn set_owner(&self, app: &str) {
        *self.owner.lock().unwrap_or_else(|e| e.into_inner()) = Some(app.to_owned());
    }

    /// Takes over a socket a previous daemon bound under `key` (the
    /// keeper kept it open, with its backlog), instead of binding anew.
    pub fn adopt(&self, key: String, tag: String, fd: OwnedFd) -> io::Result<()> {
        let mut inner = self.lock();
        let s = Socket::from(fd);
        s.set_nonblocking(true)?;
        if let Some((address, slot)) = parse_slot_key(&key) {
            return match inner.steered.get(address) {
                Some(g) => g.adopt(s, tag),
                // A group starts from a worker's slot (they come first).
                None if slot == SlotName::Overflow => Err(io::Error::other(
                    "an overflow socket whose address has no slot",
                )),
                None => {
                    let v6_only = s.only_v6().unwrap_or(false);
                    let claim = Claim::take(local_addr(&s)?)?;
                    let g =
                        self.new_group(address.to_owned(), s, Some(tag), claim, v6_only, 511)?;
                    inner.steered.insert(address.to_owned(), g);
                    Ok(())
                }
            };
        }
        if inner.sockets.contains_key(&key) {
            return Ok(());
        }
        let kind = match s.local_addr()?.as_pathname().map(|p| p.to_path_buf()) {
            Some(path) => Kind::Unix(s, path),
            None => Kind::Tcp(s),
        };
        let mut l = Listener {
            kind,
            balanced: None,
            kept_as: Some(tag),
        };
        self.balance(&key, &mut l)?;
        inner.sockets.insert(key, l);
        Ok(())
    }

    /// The accept loops of the balanced sockets, for a worker adopted from
    /// a previous daemon (it listened on them all before).
    pub fn distributors(&self) -> Vec<Arc<Distributor>> {
        self.lock()
            .sockets
            .values()
            .filter_map(|l| l.balanced.as_ref().map(|(d, _)| d.clone()))
            .collect()
    }

    /// The steered addresses, for a worker adopted from a previous daemon.
    pub fn steered_groups(&self) -> Vec<Arc<SteeredGroup>> {
        self.lock().steered.values().cloned().collect()
    }

    /// Whether the kernel steers any of the app's addresses.
    pub fn steers_any(&self) -> bool {
        !self.lock().steered.is_empty()
    }

    /// The addresses currently bound, for `describe`.
    pub fn addresses(&self) -> Vec<String> {
        let inner = self.lock();
        let mut v: Vec<String> = inner.sockets.values().map(Listener::local).collect();
        v.extend(inner.steered.values().map(|g| g.local()));
        v.sort();
        v
    }
}

fn local_addr(s: &Socket) -> io::Result<SocketAddr> {
    s.local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::from_raw_os_error(EINVAL))
}

/// The TCP address a query asks for (the unspecified one for "any").
fn requested(q: &ServerQuery) -> io::Result<SocketAddr> {
    let port = u16::try_from(q.port).map_err(|_| io::Error::from_raw_os_error(EINVAL))?;
    let ip = match &q.address {
        None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        Some(a) => a
            .parse()
            .map_err(|_| io::Error::from_raw_os_error(EINVAL))?,
    };
    Ok(SocketAddr::new(ip, port))
}

fn errno(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(EINVAL)
}

const EINVAL: i32 = nix::errno::Errno::EINVAL as i32;

/// Sockets are created non-blocking: the flag belongs to the open file,
/// which every worker shares, and libuv does not set it on a descriptor
/// received over IPC. A blocking listener would leave a worker that loses an
/// accept race stuck in accept(2), deaf to its other connections and signals.
fn new_socket(domain: Domain, protocol: Option<Protocol>) -> io::Result<Socket> {
    let s = Socket::new(domain, Type::STREAM, protocol)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Binds the query's address; `reuse_port` for the first socket of a
/// steered group, which the others join.
fn bind(q: &ServerQuery, reuse_port: bool) -> io::Result<Kind> {
    if q.is_path() {
        let path = PathBuf::from(q.address.clone().unwrap_or_default());
        let s = new_socket(Domain::UNIX, None)?;
        s.bind(&SockAddr::unix(&path)?)?;
        s.listen(q.backlog)?;
        return Ok(Kind::Unix(s, path));
    }
    let addr = requested(q)?;
    match &q.address {
        // Like Node's primary: dual-stack on "::", falling back to IPv4.
        None => bind_tcp(addr, false, reuse_port).or_else(|_| {
            bind_tcp(
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port()),
                false,
                reuse_port,
            )
        }),
        Some(_) => bind_tcp(addr, q.ipv6_only, reuse_port),
    }
    .and_then(|s| {
        s.listen(q.backlog)?;
        Ok(Kind::Tcp(s))
    })
}

fn bind_tcp(addr: SocketAddr, v6_only: bool, reuse_port: bool) -> io::Result<Socket> {
    let s = new_socket(Domain::for_address(addr), Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if reuse_port {
        s.set_reuse_port(true)?;
    }
    if addr.is_ipv6() {
        s.set_only_v6(v6_only)?;
    }
    s.bind(&addr.into())?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(pool: &ListenerPool, q: &ServerQuery) -> Result<OwnedFd, i32> {
        match pool.join(q)? {
            Joined::Shared(fd) => Ok(fd),
            Joined::Balanced { .. } | Joined::Steered(_) => panic!("a shared pool balanced"),
        }
    }

    fn query(address: Option<&str>, port: i64, index: i64) -> ServerQuery {
        ServerQuery {
            seq: 1,
            address: address.map(str::to_owned),
            port,
            address_type: if port < 0 { -1 } else { 4 },
            fd: None,
            index,
            ipv6_only: false,
            backlog: 511,
        }
    }

    #[test]
    fn same_key_shares_one_socket_and_port_zero_is_stable() {
        let pool = ListenerPool::new(Policy::Shared);
        let _g = pool.acquire();
        let q = query(Some("127.0.0.1"), 0, 0);
        let a = shared(&pool, &q).unwrap();
        let b = shared(&pool, &q).unwrap();
        let addr = |fd: &OwnedFd| {
            socket2::SockRef::from(fd)
                .local_addr()
                .unwrap()
                .as_socket()
                .unwrap()
        };
        assert_eq!(addr(&a), addr(&b));
        assert_ne!(addr(&a).port(), 0);
        let other = shared(&pool, &query(Some("127.0.0.1"), 0, 1)).unwrap();
        assert_ne!(addr(&a).port(), addr(&other).port());
        std::net::TcpStream::connect(addr(&a)).unwrap();
        let flags = nix::fcntl::fcntl(&a, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert!(
            nix::fcntl::OFlag::from_bits_truncate(flags).contains(nix::fcntl::OFlag::O_NONBLOCK),
            "workers share the file's flags and libuv expects a non-blocking listener"
        );
    }

    #[test]
    fn port_in_use_gives_eaddrinuse() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port() as i64;
        let pool = ListenerPool::new(Policy::Shared);
        let _g = pool.acquire();
        assert_eq!(
            shared(&pool, &query(Some("127.0.0.1"), port, 0)).unwrap_err(),
            nix::errno::Errno::EADDRINUSE as i32
        );
    }

    #[test]
    fn sockets_close_with_the_last_guard() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let pool = ListenerPool::new(Policy::Shared);
        let g1 = pool.acquire();
        let g2 = pool.acquire();
        let fd = shared(&pool, &query(Some(path.to_str().unwrap()), -1, 0)).unwrap();
        drop(fd);
        assert!(path.exists());
        drop(g1);
        assert_eq!(pool.addresses().len(), 1);
        drop(g2);
        assert!(pool.addresses().is_empty());
        assert!(!path.exists());
    }
}
