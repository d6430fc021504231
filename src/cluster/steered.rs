//! One listen address of a round-robin app served by the kernel: a socket
//! per worker (a slot), steered in turn by the reuseport program, so that
//! workers accept their own connections and the supervisor costs nothing
//! per connection.
//!
//! The supervisor keeps every slot's socket. A slot whose worker is gone
//! (crashed, replaced, scaled away) leaves the turn at once; what already
//! waits in its backlog is accepted here and handed to a live worker
//! (Node's `newconn`, as in the supervisor's own round-robin), and the next
//! worker to listen takes the slot over. With no worker at all, connections
//! wait in the backlogs.
//!
//! The group's overflow socket (see `reuseport`) is a slot of its own that
//! every worker accepts from once it says it does; the program uses it
//! only while at least one worker does.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use socket2::Socket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::balance::Policy;
use super::distribute::{Distributor, Handoff, WorkerLoad};
use super::reuseport::{Steering, MAX_SOCKETS};
use super::sessions::Sessions;

struct Slot {
    socket: Socket,
    /// The workers that accept from it (two during a reload's hand-over).
    holders: BTreeSet<u64>,
    /// Hands on its backlog while it has no holder.
    drain: Arc<Distributor>,
    /// The drain's accept loop, only while the slot has no holder: a
    /// socket watched here would wake the supervisor for every connection
    /// its worker accepts.
    task: Option<JoinHandle<()>>,
    /// Its name in the daemon's keeper, which holds a duplicate.
    kept_as: Option<String>,
}

impl Slot {
    /// Watches the socket (and hands on its connections) exactly while no
    /// worker accepts from it.
    fn drain_if_free(&mut self) {
        if !self.holders.is_empty() {
            return self.stop_draining();
        }
        if self.task.is_some() {
            return;
        }
        match self.socket.try_clone().and_then(|s| self.drain.spawn(s)) {
            Ok(t) => self.task = Some(t),
            // Its backlog waits for the next worker to take the slot.
            Err(e) => tracing::error!(key = %self.drain.key(), "cannot watch a free socket: {e}"),
        }
    }

    fn stop_draining(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.stop_draining();
        if let Some(tag) = self.kept_as.take() {
            crate::keeper::client::forget_and_wait(&tag);
        }
    }
}

struct Member {
    tx: mpsc::UnboundedSender<Handoff>,
    load: Arc<WorkerLoad>,
}

#[derive(Default)]
struct State {
    slots: Vec<Slot>,
    /// Bound when the first worker joins; its holders are the workers
    /// that said they accept from it.
    overflow: Option<Slot>,
    members: BTreeMap<u64, Member>,
    /// The number the next new slot is kept under (adopted slots keep
    /// theirs, so numbers are never reused).
    next_slot: usize,
}

/// The steered addresses of this daemon. Their sockets let any socket of
/// the same user join them (SO_REUSEPORT), so a second app on the same
/// port is refused here, as the kernel would refuse it without the option.
static CLAIMED: Mutex<Vec<SocketAddr>> = Mutex::new(Vec::new());

/// An address held by one steered group, released with it.
pub struct Claim(SocketAddr);

impl Claim {
    pub fn take(addr: SocketAddr) -> io::Result<Claim> {
        let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
        if claimed.iter().any(|a| overlaps(a, &addr)) {
            return Err(io::Error::from_raw_os_error(libc::EADDRINUSE));
        }
        claimed.push(addr);
        Ok(Claim(addr))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = claimed.iter().position(|a| *a == self.0) {
            claimed.swap_remove(i);
        }
    }
}

/// The kernel refuses a sockarray write for now (see `publish`).
fn is_busy(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EBUSY)
}

/// Whether two addresses would conflict without SO_REUSEPORT.
fn overlaps(a: &SocketAddr, b: &SocketAddr) -> bool {
    a.port() == b.port() && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Binds one more socket of the group (SO_REUSEPORT, listening).
pub type Bind = Box<dyn Fn(SocketAddr) -> io::Result<Socket> + Send + Sync>;
/// Gives the keeper a duplicate of a new slot's socket, under a name.
pub type Keep = Box<dyn Fn(&str, BorrowedFd<'_>) -> Option<String> + Send + Sync>;

pub struct SteeredGroup {
    /// Node's key for the address, which every `newconn` names.
    key: String,
    addr: SocketAddr,
    steering: Steering,
    sessions: Arc<Sessions>,
    bind: Bind,
    keep: Keep,
    state: Mutex<State>,
    /// Itself, for the retry of a publish the kernel refused for now.
    me: Weak<SteeredGroup>,
    /// A retry of the publish is under way.
    retrying: AtomicBool,
    _claim: Claim,
}

/// How often, and how long, a publish refused with EBUSY is tried again.
const BUSY_RETRY: Duration = Duration::from_millis(10);
const BUSY_GIVE_UP: Duration = Duration::from_secs(5);

/// Which socket of a group a keeper tag names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotName {
    /// A worker's own, by number.
    Turn(usize),
    Overflow,
}

/// A slot's name in the keeper's tags: the address's key and the slot.
pub fn slot_key(key: &str, slot: SlotName) -> String {
    match slot {
        SlotName::Turn(n) => format!("{key}{SLOT_MARK}{n}"),
        SlotName::Overflow => format!("{key}{OVERFLOW_MARK}"),
    }
}

/// The address's key and the slot of a name made by `slot_key`.
pub fn parse_slot_key(name: &str) -> Option<(&str, SlotName)> {
    if let Some(key) = name.strip_suffix(OVERFLOW_MARK) {
        return Some((key, SlotName::Overflow));
    }
    let (key, slot) = name.rsplit_once(SLOT_MARK)?;
    Some((key, SlotName::Turn(slot.parse().ok()?)))
}

const SLOT_MARK: &str = "#slot";
const OVERFLOW_MARK: &str = "#overflow";

/// The slot of a keeper tag made from `slot_key`.
fn slot_of_tag(tag: &str) -> Option<SlotName> {
    parse_slot_key(tag).map(|(_, n)| n)
}

/// What a joining worker accepts from: its own slot's socket, and the
/// overflow socket (None where it could not be bound).
pub struct JoinedSockets {
    pub own: OwnedFd,
    pub overflow: Option<OwnedFd>,
}

impl SteeredGroup {
    /// A group whose first socket, `first`, is bound already (the port of
    /// a `listen(0)` is chosen by then) and its address claimed; `kept_as`
    /// when it is a previous daemon's slot.
    pub fn new(
        key: String,
        first: Socket,
        kept_as: Option<String>,
        claim: Claim,
        sessions: Arc<Sessions>,
        bind: Bind,
        keep: Keep,
    ) -> io::Result<Arc<Self>> {
        let steering = Steering::load()?;
        let addr = claim.0;
        let group = Arc::new_cyclic(|me| SteeredGroup {
            key,
            addr,
            steering,
            sessions,
            bind,
            keep,
            state: Mutex::default(),
            me: me.clone(),
            retrying: AtomicBool::new(false),
            _claim: claim,
        });
        let slot = match kept_as.as_deref().and_then(slot_of_tag) {
            Some(SlotName::Turn(n)) => Some(n),
            _ => None,
        };
        group.add_slot(&mut group.lock(), first, kept_as.zip(slot))?;
        Ok(group)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Each change leaves the state whole before anything can panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn local(&self) -> String {
        self.addr.to_string()
    }

    /// Takes over a slot a previous daemon bound (the keeper kept it, with
    /// its backlog). Its worker, if alive, is not known: the slot is served
    /// here until a worker takes it (both accepting from it loses nothing).
    pub fn adopt(&self, socket: Socket, kept_as: String) -> io::Result<()> {
        let mut st = self.lock();
        match slot_of_tag(&kept_as) {
            Some(SlotName::Overflow) => self.set_overflow_slot(&mut st, socket, Some(kept_as))?,
            slot => {
                let slot = match slot {
                    Some(SlotName::Turn(n)) => Some((kept_as, n)),
                    _ => None,
                };
                self.add_slot(&mut st, socket, slot)?;
            }
        }
        self.publish(&st);
        Ok(())
    }

    /// A new slot with the members as its drain's workers (it is served
    /// here until a worker holds it).
    fn new_slot(&self, st: &State, socket: Socket, kept_as: Option<String>) -> Slot {
        let drain = Distributor::new(self.key.clone(), Policy::RoundRobin, self.sessions.clone());
        for (token, m) in &st.members {
            drain.join(*token, m.tx.clone(), m.load.clone());
        }
        Slot {
            socket,
            holders: BTreeSet::new(),
            drain,
            task: None,
            kept_as,
        }
    }

    /// Makes `socket` the group's overflow socket, held by no worker yet
    /// (a previous daemon's, with what waits in it, or a new one).
    fn set_overflow_slot(
        &self,
        st: &mut State,
        socket: Socket,
        kept_as: Option<String>,
    ) -> io::Result<()> {
        self.steering.attach(socket.as_fd())?;
        let kept_as = kept_as
            .or_else(|| (self.keep)(&slot_key(&self.key, SlotName::Overflow), socket.as_fd()));
        let mut slot = self.new_slot(st, socket, kept_as);
        slot.drain_if_free();
        st.overflow = Some(slot);
        Ok(())
    }

    /// The overflow socket, bound on first use; None (logged) where the
    /// group works without one.
    fn overflow_for_worker(&self, st: &mut State) -> Option<OwnedFd> {
        if st.overflow.is_none() {
            let made = (self.bind)(self.addr).and_then(|s| self.set_overflow_slot(st, s, None));
            if let Err(e) = made {
                tracing::warn!(key = %self.key, "no overflow socket, turns only: {e}");
                return None;
            }
        }
        let slot = st.overflow.as_ref()?;
        slot.socket.as_fd().try_clone_to_owned().ok()
    }

    /// The worker says it accepts from the overflow socket: floods may go
    /// there from now on.
    pub fn hold_overflow(&self, token: u64) {
        let mut st = self.lock();
        if !st.members.contains_key(&token) {
            return;
        }
        if let Some(slot) = st.overflow.as_mut() {
            slot.holders.insert(token);
            slot.drain_if_free();
        }
        self.publish(&st);
    }

    /// Adds a socket to the group; `kept` names a previous daemon's slot
    /// (its keeper tag and number), else the keeper gets it under a new one.
    fn add_slot(
        &self,
        st: &mut State,
        socket: Socket,
        kept: Option<(String, usize)>,
    ) -> io::Result<usize> {
        if st.slots.len() >= MAX_SOCKETS as usize {
            return Err(io::Error::from_raw_os_error(libc::ENOBUFS));
        }
        self.steering.attach(socket.as_fd())?;
        // A previous daemon's slot may have connections waiting and no
        // worker known to hold it; a new one is for the worker joining.
        let adopted = kept.is_some();
        let number = match &kept {
            Some((_, n)) => *n,
            None => st.next_slot,
        };
        st.next_slot = st.next_slot.max(number + 1);
        let kept_as = match kept {
            Some((tag, _)) => Some(tag),
            None => (self.keep)(&slot_key(&self.key, SlotName::Turn(number)), socket.as_fd()),
        };
        let index = st.slots.len();
        let slot = self.new_slot(st, socket, kept_as);
        st.slots.push(slot);
        if adopted {
            st.slots[index].drain_if_free();
        }
        Ok(index)
    }

    /// A worker listens: it gets a slot of its own (a free one, else a new
    /// one) to accept from, the overflow socket, and the backlogs of free
    /// slots are handed to it too. The error is the OS errno, which the
    /// worker sees as its own.
    pub fn join(
        &self,
        token: u64,
        tx: mpsc::UnboundedSender<Handoff>,
        load: Arc<WorkerLoad>,
    ) -> Result<JoinedSockets, i32> {
        let mut st = self.lock();
        let index = match st.slots.iter().position(|s| s.holders.is_empty()) {
            Some(i) => i,
            None => {
                let socket = (self.bind)(self.addr).map_err(errno)?;
                self.add_slot(&mut st, socket, None).map_err(errno)?
            }
        };
        let fd = st.slots[index]
            .socket
            .as_fd()
            .try_clone_to_owned()
            .map_err(errno)?;
        let overflow = self.overflow_for_worker(&mut st);
        self.add_member(&mut st, token, tx, load);
        let slot = &mut st.slots[index];
        slot.holders.insert(token);
        slot.drain_if_free();
        self.publish(&st);
        Ok(JoinedSockets { own: fd, overflow })
    }

    /// A worker adopted from a previous daemon: it accepts from the slots
    /// whose sockets it holds (`held`, by inode) and takes handed
    /// connections.
    pub fn rejoin(
        &self,
        token: u64,
        tx: mpsc::UnboundedSender<Handoff>,
        load: Arc<WorkerLoad>,
        held: &HashSet<u64>,
    ) {
        let mut st = self.lock();
        self.add_member(&mut st, token, tx, load);
        let State {
            slots, overflow, ..
        } = &mut *st;
        for s in slots.iter_mut().chain(overflow.as_mut()) {
            if inode(s.socket.as_fd()).is_some_and(|i| held.contains(&i)) {
                s.holders.insert(token);
                s.drain_if_free();
            }
        }
        self.publish(&st);
    }

    fn add_member(
        &self,
        st: &mut State,
        token: u64,
        tx: mpsc::UnboundedSender<Handoff>,
        load: Arc<WorkerLoad>,
    ) {
        for s in st.slots.iter().chain(st.overflow.as_ref()) {
            s.drain.join(token, tx.clone(), load.clone());
        }
        st.members.insert(token, Member { tx, load });
    }

    /// The worker closed its server, is stopping, or is gone: its slot
    /// leaves the turn now, and what waits there goes to the others.
    pub fn leave(&self, token: u64) {
        let mut st = self.lock();
        st.members.remove(&token);
        let State {
            slots, overflow, ..
        } = &mut *st;
        for s in slots.iter_mut().chain(overflow.as_mut()) {
            s.drain.leave(token);
            if s.holders.remove(&token) {
                s.drain_if_free();
            }
        }
        self.publish(&st);
    }

    /// Puts the slots that have a worker in turn, and the overflow socket
    /// in use while a worker accepts from it.
    fn publish(&self, st: &State) {
        let Err(e) = self.try_publish(st) else {
            return;
        };
        // A socket is in one sockarray at a time, and a previous daemon's
        // (its program still attached until ours replaced it) is freed by
        // the kernel a moment after: until then ours cannot take the
        // socket. Meanwhile connections are hashed over the workers.
        if is_busy(&e) {
            if let (Ok(rt), Some(me)) = (tokio::runtime::Handle::try_current(), self.me.upgrade()) {
                // One retry per group, which writes the state as it is then.
                if !self.retrying.swap(true, Ordering::AcqRel) {
                    rt.spawn(me.retry_publish());
                }
                return;
            }
        }
        // The previous turn stays; free slots are still served here.
        tracing::error!(key = %self.key, "cannot update the connection turn: {e}");
    }

    async fn retry_publish(self: Arc<Self>) {
        let started = tokio::time::Instant::now();
        let outcome = loop {
            tokio::time::sleep(BUSY_RETRY).await;
            let st = self.lock();
            let done = self.try_publish(&st);
            if !done.as_ref().is_err_and(is_busy) || started.elapsed() >= BUSY_GIVE_UP {
                // Under the state's lock, as every publish is: one refused
                // after this starts a retry of its own.
                self.retrying.store(false, Ordering::Release);
                break done;
            }
        };
        match outcome {
            Ok(()) => tracing::info!(
                key = %self.key,
                "connection turn in place after {} ms (the previous program's sockets were busy)",
                started.elapsed().as_millis()
            ),
            Err(e) => tracing::error!(key = %self.key, "cannot update the connection turn: {e}"),
        }
    }

    /// Writes the turn and the overflow entry; the first error, once both
    /// were tried.
    fn try_publish(&self, st: &State) -> io::Result<()> {
        let held = |s: &&Slot| !s.holders.is_empty();
        let live: Vec<BorrowedFd<'_>> = st
            .slots
            .iter()
            .filter(held)
            .map(|s| s.socket.as_fd())
            .collect();
        let turn = self.steering.publish(&live);
        let overflow = st.overflow.as_ref().filter(held).map(|s| s.socket.as_fd());
        let overflow = self.steering.set_overflow(overflow);
        turn.and(overflow)
    }

    /// Slots and how many have a worker.
    #[cfg(test)]
    fn slots(&self) -> (usize, usize) {
        let st = self.lock();
        let held = st.slots.iter().filter(|s| !s.holders.is_empty()).count();
        (st.slots.len(), held)
    }
}

/// The inodes of the sockets process `pid` holds open (what its
/// `/proc/<pid>/fd` links name `socket:[inode]`); empty if unreadable.
pub fn sockets_of(pid: u32) -> HashSet<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

fn inode(fd: BorrowedFd<'_>) -> Option<u64> {
    nix::sys::stat::fstat(fd).ok().map(|s| s.st_ino)
}

fn errno(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EINVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_s_sockets_are_found_by_inode() {
        let s = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ino = inode(s.as_fd()).unwrap();
        assert!(sockets_of(std::process::id()).contains(&ino));
        drop(s);
        assert!(!sockets_of(std::process::id()).contains(&ino));
    }

    fn group() -> Option<Arc<SteeredGroup>> {
        if Steering::load().is_err() {
            eprintln!("skipped: this kernel refuses the steering program");
            return None;
        }
        let first = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        Some(group_of(first, None))
    }

    fn listen(addr: SocketAddr) -> io::Result<Socket> {
        let s = Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        s.set_reuse_port(true)?;
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        s.listen(64)?;
        Ok(s)
    }

    fn group_of(first: Socket, kept_as: Option<String>) -> Arc<SteeredGroup> {
        let addr = first.local_addr().unwrap().as_socket().unwrap();
        let claim = Claim::take(addr).unwrap();
        let keep: Keep = Box::new(|_, _| None);
        let bind: Bind = Box::new(listen);
        SteeredGroup::new(
            "k".into(),
            first,
            kept_as,
            claim,
            Arc::default(),
            bind,
            keep,
        )
        .unwrap()
    }

    fn worker() -> (
        mpsc::UnboundedSender<Handoff>,
        mpsc::UnboundedReceiver<Handoff>,
        Arc<WorkerLoad>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, rx, Arc::default())
    }

    fn inode_of(fd: &OwnedFd) -> u64 {
        inode(fd.as_fd()).unwrap()
    }

    #[tokio::test]
    async fn each_worker_gets_its_own_slot_and_a_free_slot_s_backlog_goes_to_the_others() {
        let Some(g) = group() else { return };
        let (a_tx, _a_rx, a_load) = worker();
        let (b_tx, mut b_rx, b_load) = worker();
        let a = g.join(1, a_tx, a_load).unwrap().own;
        let b = g.join(2, b_tx, b_load).unwrap().own;
        assert_ne!(inode_of(&a), inode_of(&b));
        assert_eq!(g.slots(), (2, 2));
        // A second app cannot take the port (the kernel would let it join).
        assert_eq!(
            Claim::take(g.addr).err().and_then(|e| e.raw_os_error()),
            Some(libc::EADDRINUSE)
        );

        // Worker 1 goes: new connections reach worker 2's socket only, and
        // nothing waits unserved in worker 1's.
        g.leave(1);
        assert_eq!(g.slots(), (2, 1));
        let clients: Vec<std::net::TcpStream> = (0..4)
            .map(|_| std::net::TcpStream::connect(g.addr).unwrap())
            .collect();
        let b_sock = Socket::from(b);
        let mut direct = 0;
        while b_sock.accept().is_ok() {
            direct += 1;
        }
        assert_eq!(direct, 4, "all in turn to the live worker");

        // A connection already in the free slot's backlog (here: made
        // while no slot was in turn, so the kernel hashed it) is handed to
        // the live worker.
        g.leave(2);
        let _more: Vec<std::net::TcpStream> = (0..6)
            .map(|_| std::net::TcpStream::connect(g.addr).unwrap())
            .collect();
        let (c_tx, mut c_rx, c_load) = worker();
        let c = Socket::from(g.join(3, c_tx, c_load).unwrap().own);
        let mut got = 0;
        while c.accept().is_ok() {
            got += 1;
        }
        while got < 6 {
            let h = tokio::time::timeout(std::time::Duration::from_secs(5), c_rx.recv())
                .await
                .expect("a handed connection")
                .unwrap();
            assert_eq!(h.from.key(), "k");
            got += 1;
        }
        assert!(b_rx.try_recv().is_err(), "nothing for a worker that left");
        assert_eq!(g.slots(), (2, 1));
        drop(clients);
    }

    /// What `pmr update` meets: the previous daemon's sockarray still
    /// holds the sockets (its program was attached until ours replaced it)
    /// and the kernel frees it a moment later; until then every write of
    /// ours is refused with EBUSY.
    #[tokio::test]
    async fn a_turn_refused_while_a_previous_program_holds_the_sockets_is_put_in_place_once_it_is_freed(
    ) {
        let Ok(previous) = Steering::load() else {
            return eprintln!("skipped: this kernel refuses the steering program");
        };
        let a = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = a.local_addr().unwrap().as_socket().unwrap();
        let b = listen(addr).unwrap();
        previous.attach(a.as_fd()).unwrap();
        previous.publish(&[a.as_fd(), b.as_fd()]).unwrap();

        let g = group_of(
            a.try_clone().unwrap(),
            Some(slot_key("k", SlotName::Turn(0))),
        );
        g.adopt(b.try_clone().unwrap(), slot_key("k", SlotName::Turn(1)))
            .unwrap();
        for (token, s) in [(1, &a), (2, &b)] {
            let (tx, _rx, load) = worker();
            g.rejoin(token, tx, load, &HashSet::from([inode(s.as_fd()).unwrap()]));
        }
        assert!(
            g.retrying.load(Ordering::Acquire),
            "refused while the previous program holds them"
        );

        drop(previous);
        let t0 = std::time::Instant::now();
        while g.retrying.load(Ordering::Acquire) {
            assert!(t0.elapsed() < BUSY_GIVE_UP, "still refused");
            tokio::time::sleep(BUSY_RETRY).await;
        }
        // In turn: one after another, the connections alternate (hashed,
        // twelve would not).
        let mut order = Vec::new();
        let mut clients = Vec::new();
        for _ in 0..12 {
            clients.push(std::net::TcpStream::connect(addr).unwrap());
            let took = loop {
                if a.accept().is_ok() {
                    break 'a';
                }
                if b.accept().is_ok() {
                    break 'b';
                }
                tokio::task::yield_now().await;
            };
            order.push(took);
        }
        assert!(order.windows(2).all(|w| w[0] != w[1]), "{order:?}");
    }

    #[test]
    fn slot_keys_round_trip_even_when_the_key_has_the_mark_s_characters() {
        let k = slot_key("::1:3000:6:undefined:0", SlotName::Turn(3));
        assert_eq!(
            parse_slot_key(&k),
            Some(("::1:3000:6:undefined:0", SlotName::Turn(3)))
        );
        let o = slot_key("::1:3000:6:undefined:0", SlotName::Overflow);
        assert_eq!(
            parse_slot_key(&o),
            Some(("::1:3000:6:undefined:0", SlotName::Overflow))
        );
        assert_eq!(parse_slot_key("null:3000:4:undefined:0"), None);
        assert_eq!(parse_slot_key("a#slotx"), None);
    }
}
