//! Round-robin in the kernel: each worker accepts from a listening socket of
//! its own, all bound to the app's address with SO_REUSEPORT, and a small
//! eBPF program (SK_REUSEPORT) picks the socket of the next worker in turn
//! for each new connection. The supervisor keeps every socket and rewrites
//! the program's socket map as workers come and go; it touches no
//! connection. Needs CAP_BPF (or root); where the kernel refuses, the
//! supervisor's own accept-and-hand-over round-robin serves instead.
//!
//! Turns are what keeps long-lived connections (keep-alive, websockets)
//! spread evenly, but for a flood of short ones they cost: a worker whose
//! own queue is empty sleeps while the other's holds connections (measured
//! on 2 cores: 15-30 % more CPU per request and up to 0.6x the requests of
//! Node's shared socket). So the group has one more socket, the overflow,
//! that every worker accepts from, and while connections arrive faster than
//! `OVERFLOW_RATE` per window (a rate no burst of a few dozen reaches) the
//! program puts them there: the first free worker takes each one, as with
//! Node's `SCHED_NONE`.
//!
//! The program is assembled here (no compiler for BPF is needed):
//!
//! ```text
//! if cfg.overflow {
//!     w = ktime_ns() >> WINDOW_SHIFT
//!     if st.window != w { st.previous = st.window + 1 == w ? st.count : 0; st.window = w; st.count = 0 }
//!     st.count += 1
//!     if st.previous >= OVERFLOW_RATE { i = OVERFLOW; goto select }
//! }
//! if cfg.count == 0 { return SK_PASS }      // none in turn: the kernel hashes
//! i = fetch_add(st.turn, 1) % cfg.count
//! select: sk_select_reuseport(ctx, socks, &i)
//! return SK_PASS                            // not selected: the kernel hashes
//! ```

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The most sockets one listen address can have in turn.
pub const MAX_SOCKETS: u32 = 256;

/// The socket map's entry of the overflow socket, after those in turn.
const OVERFLOW: u32 = MAX_SOCKETS;

/// The length of the program's rate window: 2^26 ns, about 67 ms.
const WINDOW_SHIFT: i32 = 26;

/// New connections in one window (about 950 a second) from which the next
/// window's go to the overflow socket. Well above a burst of 50 (websocket
/// clients connecting at once, with a stray connection or two beside them),
/// in one window or split over two, so those are spread in turn; floods of
/// short connections (a busy site, a load test: 6 000 to 10 000 a second on
/// 2 cores) pass it many times over.
const OVERFLOW_RATE: i32 = 64;

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

// Opcodes, spelled as the kernel's macros compose them.
const MOV64_REG: u8 = 0xbf; // BPF_ALU64 | BPF_MOV | BPF_X
const MOV64_IMM: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const ADD64_IMM: u8 = 0x07; // BPF_ALU64 | BPF_ADD | BPF_K
const RSH64_IMM: u8 = 0x77; // BPF_ALU64 | BPF_RSH | BPF_K
const MOD64_REG: u8 = 0x9f; // BPF_ALU64 | BPF_MOD | BPF_X
const ST_W: u8 = 0x62; // BPF_ST | BPF_MEM | BPF_W
const ST_DW: u8 = 0x7a; // BPF_ST | BPF_MEM | BPF_DW
const STX_W: u8 = 0x63; // BPF_STX | BPF_MEM | BPF_W
const STX_DW: u8 = 0x7b; // BPF_STX | BPF_MEM | BPF_DW
const LDX_DW: u8 = 0x79; // BPF_LDX | BPF_MEM | BPF_DW
const LD_IMM64: u8 = 0x18; // BPF_LD | BPF_IMM | BPF_DW
const ATOMIC_DW: u8 = 0xdb; // BPF_STX | BPF_ATOMIC | BPF_DW
const JA: u8 = 0x05; // BPF_JMP | BPF_JA
const JEQ_IMM: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JEQ_REG: u8 = 0x1d; // BPF_JMP | BPF_JEQ | BPF_X
const JNE_REG: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
const JLT_IMM: u8 = 0xa5; // BPF_JMP | BPF_JLT | BPF_K
const CALL: u8 = 0x85; // BPF_JMP | BPF_CALL
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

const PSEUDO_MAP_FD: u8 = 1;
const ATOMIC_ADD: i32 = 0x00; // BPF_ADD
const FETCH_ADD: i32 = 0x01; // BPF_ADD | BPF_FETCH
const HELPER_MAP_LOOKUP: i32 = 1;
const HELPER_KTIME_GET_NS: i32 = 5;
const HELPER_SK_SELECT_REUSEPORT: i32 = 82;
const SK_PASS: i32 = 1;

/// The control map's two entries, 32 bytes each: the program's own state
/// (`ST_*` offsets), and what the supervisor sets (`CFG_*`).
const CTL_STATE: u32 = 0;
const CTL_CONFIG: u32 = 1;
const CTL_VALUE_SIZE: u32 = 32;
const ST_TURN: i16 = 0;
const ST_WINDOW: i16 = 8;
const ST_COUNT: i16 = 16;
const ST_PREVIOUS: i16 = 24;
const CFG_COUNT: i16 = 0;
const CFG_OVERFLOW: i16 = 8;

/// Where a jump goes; resolved once the program is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Label {
    Turn,
    Count,
    Roll,
    Select,
    Pass,
}

/// Lays out instructions and resolves their jumps to labels.
#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    jumps: Vec<(usize, Label)>,
    labels: Vec<(Label, usize)>,
}

impl Asm {
    fn op(&mut self, i: Insn) {
        self.insns.push(i);
    }

    fn jump(&mut self, code: u8, dst: u8, src: u8, imm: i32, to: Label) {
        self.jumps.push((self.insns.len(), to));
        self.insns.push(insn(code, dst, src, 0, imm));
    }

    fn label(&mut self, l: Label) {
        self.labels.push((l, self.insns.len()));
    }

    fn map(&mut self, reg: u8, fd: RawFd) {
        self.op(insn(LD_IMM64, reg, PSEUDO_MAP_FD, 0, fd));
        self.op(insn(0, 0, 0, 0, 0));
    }

    /// r0 = lookup(map, key), through the stack slot at r10-4.
    fn lookup(&mut self, fd: RawFd, key: u32) {
        self.op(insn(ST_W, 10, 0, -4, key as i32));
        self.map(1, fd);
        self.op(insn(MOV64_REG, 2, 10, 0, 0));
        self.op(insn(ADD64_IMM, 2, 0, 0, -4));
        self.op(insn(CALL, 0, 0, 0, HELPER_MAP_LOOKUP));
    }

    fn finish(mut self) -> Vec<Insn> {
        let end = self.insns.len();
        for (from, to) in self.jumps {
            let target = self
                .labels
                .iter()
                .find(|(l, _)| *l == to)
                .map_or(end, |(_, at)| *at);
            self.insns[from].off = (target as i64 - from as i64 - 1) as i16;
        }
        self.insns
    }
}

/// The program, for a control map and a socket map (by descriptor, which
/// the kernel resolves at load time). Registers: r6 the context, r7 the
/// sockets in turn, r8 the config, r9 the state (r6-r9 survive calls).
pub fn program(ctl: RawFd, socks: RawFd) -> Vec<Insn> {
    use Label::*;
    let mut a = Asm::default();
    a.op(insn(MOV64_REG, 6, 1, 0, 0));
    a.lookup(ctl, CTL_CONFIG);
    a.jump(JEQ_IMM, 0, 0, 0, Pass);
    a.op(insn(MOV64_REG, 8, 0, 0, 0));
    a.lookup(ctl, CTL_STATE);
    a.jump(JEQ_IMM, 0, 0, 0, Pass);
    a.op(insn(MOV64_REG, 9, 0, 0, 0));

    // The rate gate, only while there is an overflow socket.
    a.op(insn(LDX_DW, 1, 8, CFG_OVERFLOW, 0));
    a.jump(JEQ_IMM, 1, 0, 0, Turn);
    a.op(insn(CALL, 0, 0, 0, HELPER_KTIME_GET_NS));
    a.op(insn(RSH64_IMM, 0, 0, 0, WINDOW_SHIFT));
    a.op(insn(LDX_DW, 1, 9, ST_WINDOW, 0));
    a.jump(JEQ_REG, 1, 0, 0, Count);
    // A new window: the one that ended is the previous one only if it
    // came right before (else nothing arrived for a whole window).
    a.op(insn(MOV64_IMM, 2, 0, 0, 0));
    a.op(insn(ADD64_IMM, 1, 0, 0, 1));
    a.jump(JNE_REG, 1, 0, 0, Roll);
    a.op(insn(LDX_DW, 2, 9, ST_COUNT, 0));
    a.label(Roll);
    a.op(insn(STX_DW, 9, 2, ST_PREVIOUS, 0));
    a.op(insn(STX_DW, 9, 0, ST_WINDOW, 0));
    a.op(insn(ST_DW, 9, 0, ST_COUNT, 0));
    a.label(Count);
    a.op(insn(MOV64_IMM, 1, 0, 0, 1));
    a.op(insn(ATOMIC_DW, 9, 1, ST_COUNT, ATOMIC_ADD));
    a.op(insn(LDX_DW, 1, 9, ST_PREVIOUS, 0));
    a.jump(JLT_IMM, 1, 0, OVERFLOW_RATE, Turn);
    a.op(insn(ST_W, 10, 0, -8, OVERFLOW as i32));
    a.jump(JA, 0, 0, 0, Select);

    a.label(Turn);
    a.op(insn(LDX_DW, 7, 8, CFG_COUNT, 0));
    a.jump(JEQ_IMM, 7, 0, 0, Pass);
    a.op(insn(MOV64_IMM, 1, 0, 0, 1));
    a.op(insn(ATOMIC_DW, 9, 1, ST_TURN, FETCH_ADD)); // r1 = turn++
    a.op(insn(MOD64_REG, 1, 7, 0, 0));
    a.op(insn(STX_W, 10, 1, -8, 0));

    a.label(Select);
    a.op(insn(MOV64_REG, 1, 6, 0, 0));
    a.map(2, socks);
    a.op(insn(MOV64_REG, 3, 10, 0, 0));
    a.op(insn(ADD64_IMM, 3, 0, 0, -8));
    a.op(insn(MOV64_IMM, 4, 0, 0, 0));
    a.op(insn(CALL, 0, 0, 0, HELPER_SK_SELECT_REUSEPORT));

    a.label(Pass);
    a.op(insn(MOV64_IMM, 0, 0, 0, SK_PASS));
    a.op(insn(EXIT, 0, 0, 0, 0));
    a.finish()
}

// bpf(2) commands and types.
const BPF_MAP_CREATE: libc::c_int = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_int = 2;
const BPF_MAP_DELETE_ELEM: libc::c_int = 3;
const BPF_PROG_LOAD: libc::c_int = 5;
const MAP_TYPE_ARRAY: u32 = 2;
const MAP_TYPE_REUSEPORT_SOCKARRAY: u32 = 20;
const PROG_TYPE_SK_REUSEPORT: u32 = 21;
const SO_ATTACH_REUSEPORT_EBPF: libc::c_int = 52;

/// `union bpf_attr`, as the three commands used here lay it out; the rest
/// stays zero, as the kernel requires.
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Self {
        Attr([0; 128])
    }

    fn u32_at(mut self, off: usize, v: u32) -> Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }

    fn u64_at(mut self, off: usize, v: u64) -> Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
}

fn bpf(cmd: libc::c_int, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, writable bpf_attr of the size passed; the
    // pointers inside it (set by the callers) outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut Attr,
            std::mem::size_of::<Attr>(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_of(r: libc::c_long) -> io::Result<OwnedFd> {
    let raw = RawFd::try_from(r).map_err(|_| io::Error::other("bpf returned no descriptor"))?;
    // SAFETY: bpf(2) just returned this new descriptor, owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn map_create(kind: u32, value_size: u32, entries: u32) -> io::Result<OwnedFd> {
    let mut a = Attr::new()
        .u32_at(0, kind)
        .u32_at(4, 4)
        .u32_at(8, value_size)
        .u32_at(12, entries);
    fd_of(bpf(BPF_MAP_CREATE, &mut a)?)
}

/// Writes an entry; `value` is as long as the map's values.
fn map_update<const N: usize>(map: &OwnedFd, key: u32, value: &[u64; N]) -> io::Result<()> {
    let mut a = Attr::new()
        .u32_at(0, map.as_raw_fd() as u32)
        .u64_at(8, &key as *const u32 as u64)
        .u64_at(16, value.as_ptr() as u64);
    bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(drop)
}

fn map_delete(map: &OwnedFd, key: u32) -> io::Result<()> {
    let mut a = Attr::new()
        .u32_at(0, map.as_raw_fd() as u32)
        .u64_at(8, &key as *const u32 as u64);
    bpf(BPF_MAP_DELETE_ELEM, &mut a).map(drop)
}

/// Whether round-robin apps are steered by the kernel here: the program
/// loads (tried once), and `PMR_REUSEPORT=off` is not in the daemon's
/// environment (which keeps to the supervisor's own round-robin).
pub fn available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        if std::env::var("PMR_REUSEPORT").is_ok_and(|v| v == "off") {
            return false;
        }
        match Steering::load() {
            Ok(_) => true,
            Err(e) => {
                tracing::info!(
                    "round-robin connections go through the supervisor: the kernel refuses its steering program ({e})"
                );
                false
            }
        }
    })
}

/// The program and its maps for one listen address.
pub struct Steering {
    prog: OwnedFd,
    ctl: OwnedFd,
    socks: OwnedFd,
    /// What the maps hold, so that only changes are written.
    published: std::sync::Mutex<Published>,
}

#[derive(Default)]
struct Published {
    /// The sockets in turn, by entry.
    turn: Vec<RawFd>,
    /// The socket in the overflow entry.
    overflow: Option<RawFd>,
}

impl Steering {
    /// Loads the program; fails where the kernel does not allow it (no
    /// CAP_BPF, an old kernel, a seccomp filter).
    pub fn load() -> io::Result<Steering> {
        let ctl = map_create(MAP_TYPE_ARRAY, CTL_VALUE_SIZE, 2)?;
        let socks = map_create(MAP_TYPE_REUSEPORT_SOCKARRAY, 8, MAX_SOCKETS + 1)?;
        let insns = program(ctl.as_raw_fd(), socks.as_raw_fd());
        let license = c"Dual MIT/GPL";
        let mut a = Attr::new()
            .u32_at(0, PROG_TYPE_SK_REUSEPORT)
            .u32_at(4, insns.len() as u32)
            .u64_at(8, insns.as_ptr() as u64)
            .u64_at(16, license.as_ptr() as u64);
        let prog = fd_of(bpf(BPF_PROG_LOAD, &mut a)?)?;
        Ok(Steering {
            prog,
            ctl,
            socks,
            published: std::sync::Mutex::default(),
        })
    }

    /// Makes the program choose among the group of `socket` (bound with
    /// SO_REUSEPORT; every socket of the group shares one program).
    pub fn attach(&self, socket: BorrowedFd<'_>) -> io::Result<()> {
        let fd: libc::c_int = self.prog.as_raw_fd();
        // SAFETY: a valid socket and a c_int option value of the size given.
        let r = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_ATTACH_REUSEPORT_EBPF,
                &fd as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Published> {
        self.published.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write_config(&self, turn: usize, overflow: bool) -> io::Result<()> {
        let mut v = [0u64; CTL_VALUE_SIZE as usize / 8];
        v[(CFG_COUNT / 8) as usize] = turn as u64;
        v[(CFG_OVERFLOW / 8) as usize] = u64::from(overflow);
        map_update(&self.ctl, CTL_CONFIG, &v)
    }

    /// The sockets that take connections, in turn, from now on (listening,
    /// in the group). None: the kernel's hash spreads them over the group.
    pub fn publish(&self, sockets: &[BorrowedFd<'_>]) -> io::Result<()> {
        let mut published = self.lock();
        let new: Vec<RawFd> = sockets
            .iter()
            .take(MAX_SOCKETS as usize)
            .map(|s| s.as_raw_fd())
            .collect();
        let old = &published.turn;
        // Shrink the turn first, so no connection picks an entry that goes.
        if new.len() < old.len() {
            self.write_config(new.len(), published.overflow.is_some())?;
        }
        // A socket can be in one entry only: entries that change are
        // emptied before any is filled (one picked meanwhile is hashed).
        let changed: Vec<usize> = (0..new.len().max(old.len()))
            .filter(|&i| new.get(i) != old.get(i))
            .collect();
        for &i in changed.iter().filter(|&&i| i < old.len()) {
            // Already gone if its socket closed.
            let _ = map_delete(&self.socks, i as u32);
        }
        for &i in changed.iter().filter(|&&i| i < new.len()) {
            map_update(&self.socks, i as u32, &[new[i] as u64])?;
        }
        self.write_config(new.len(), published.overflow.is_some())?;
        published.turn = new;
        Ok(())
    }

    /// The socket every worker accepts from, which takes the connections
    /// of a flood (see the module's doc); None: turns only.
    pub fn set_overflow(&self, socket: Option<BorrowedFd<'_>>) -> io::Result<()> {
        let mut published = self.lock();
        let fd = socket.map(|s| s.as_raw_fd());
        if fd == published.overflow {
            return Ok(());
        }
        let turn = published.turn.len();
        match socket {
            Some(s) => {
                map_update(&self.socks, OVERFLOW, &[s.as_raw_fd() as u64])?;
                self.write_config(turn, true)?;
            }
            None => {
                self.write_config(turn, false)?;
                let _ = map_delete(&self.socks, OVERFLOW);
            }
        }
        published.overflow = fd;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, Protocol, Socket, Type};
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpStream};
    use std::os::fd::AsFd;

    #[test]
    fn every_jump_lands_inside_and_the_program_ends_with_a_pass() {
        let p = program(7, 8);
        let end = p.len() - 2;
        assert_eq!(p[end], insn(MOV64_IMM, 0, 0, 0, SK_PASS));
        assert_eq!(p[end + 1].code, EXIT);
        let jumps = [JA, JEQ_IMM, JEQ_REG, JNE_REG, JLT_IMM];
        let wide: Vec<usize> = (0..p.len()).filter(|&i| p[i].code == LD_IMM64).collect();
        let mut to_end = 0;
        for (at, i) in p
            .iter()
            .enumerate()
            .filter(|(_, i)| jumps.contains(&i.code))
        {
            let target = at as i64 + 1 + i64::from(i.off);
            assert!((0..p.len() as i64).contains(&target), "jump at {at}");
            assert!(
                !wide.contains(&(target as usize - 1)),
                "into an LD_IMM64 at {at}"
            );
            to_end += usize::from(target as usize == end);
        }
        // No config or state entry, or none in turn: the kernel hashes.
        assert_eq!(to_end, 3);
        let maps: Vec<i32> = wide.iter().map(|&i| p[i].imm).collect();
        assert_eq!(maps, vec![7, 7, 8]);
    }

    fn reuseport_listener(addr: SocketAddr) -> Socket {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
        s.set_reuse_port(true).unwrap();
        s.bind(&addr.into()).unwrap();
        s.listen(128).unwrap();
        s
    }

    /// Which of `listeners` got the connection just made: each answers
    /// with its index.
    fn served_by(listeners: &[Socket], addr: SocketAddr) -> usize {
        let mut c = TcpStream::connect(addr).unwrap();
        c.write_all(b"?").unwrap();
        for (i, l) in listeners.iter().enumerate() {
            l.set_nonblocking(true).unwrap();
            if let Ok((mut s, _)) = l.accept() {
                s.set_nonblocking(false).unwrap();
                let mut b = [0u8; 1];
                s.read_exact(&mut b).unwrap();
                return i;
            }
        }
        // The handshake is complete when connect returns, so the connection
        // is in some accept queue by now.
        panic!("no listener had the connection");
    }

    /// The program and a group of three listeners it steers; None (the
    /// test skipped) where the kernel refuses the program: the daemon falls
    /// back to its own round-robin there, which the distributor's tests
    /// cover.
    fn steered_group() -> Option<(Steering, Vec<Socket>, SocketAddr)> {
        let steering = match Steering::load() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("skipped: this kernel refuses the program ({e})");
                return None;
            }
        };
        let first = reuseport_listener("127.0.0.1:0".parse().unwrap());
        let addr = first.local_addr().unwrap().as_socket().unwrap();
        let ls = vec![first, reuseport_listener(addr), reuseport_listener(addr)];
        steering.attach(ls[0].as_fd()).unwrap();
        Some((steering, ls, addr))
    }

    #[test]
    fn connections_go_to_the_published_sockets_in_turn() {
        let Some((steering, ls, addr)) = steered_group() else {
            return;
        };
        let fds: Vec<BorrowedFd<'_>> = ls.iter().map(|s| s.as_fd()).collect();
        steering.publish(&fds).unwrap();
        let got: Vec<usize> = (0..9).map(|_| served_by(&ls, addr)).collect();
        let mut counts = [0; 3];
        for g in &got {
            counts[*g] += 1;
        }
        assert_eq!(counts, [3, 3, 3], "in turn: {got:?}");
        // Only the last one in turn now.
        steering.publish(&fds[2..]).unwrap();
        for _ in 0..4 {
            assert_eq!(served_by(&ls, addr), 2);
        }
        // None in turn: the kernel's hash still reaches some socket.
        steering.publish(&[]).unwrap();
        served_by(&ls, addr);
    }

    /// Connections made in batches (all kept open until the batch is
    /// made, so they come faster than any rate the program gates on), and
    /// how many each listener got.
    fn flood(listeners: &[Socket], addr: SocketAddr, batches: usize) -> Vec<usize> {
        let mut counts = vec![0; listeners.len()];
        for _ in 0..batches {
            let batch: Vec<TcpStream> = (0..100)
                .map(|_| TcpStream::connect(addr).unwrap())
                .collect();
            for (i, l) in listeners.iter().enumerate() {
                l.set_nonblocking(true).unwrap();
                while l.accept().is_ok() {
                    counts[i] += 1;
                }
            }
            drop(batch);
        }
        counts
    }

    #[test]
    fn a_flood_goes_to_the_overflow_socket_and_turns_come_back_when_it_ends() {
        let Some((steering, ls, addr)) = steered_group() else {
            return;
        };
        let fds: Vec<BorrowedFd<'_>> = ls.iter().map(|s| s.as_fd()).collect();
        steering.publish(&fds[..2]).unwrap();

        // Without an overflow socket a flood is taken in turn.
        let counts = flood(&ls, addr, 5);
        assert_eq!(counts, [250, 250, 0]);

        steering.set_overflow(Some(fds[2])).unwrap();
        // A few at a time stay in turn.
        let got: Vec<usize> = (0..6).map(|_| served_by(&ls, addr)).collect();
        assert_eq!(got, [0, 1, 0, 1, 0, 1]);
        // A flood goes over (from its second window on).
        let mut over = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while over < 500 && std::time::Instant::now() < deadline {
            over += flood(&ls, addr, 1)[2];
        }
        assert!(over >= 500, "the overflow socket took {over}");
        // Two whole windows later, in turn again.
        std::thread::sleep(std::time::Duration::from_millis(200));
        let got: Vec<usize> = (0..4).map(|_| served_by(&ls, addr)).collect();
        assert!(!got.contains(&2), "after the flood: {got:?}");

        steering.set_overflow(None).unwrap();
        let counts = flood(&ls, addr, 5);
        assert_eq!(counts[2], 0, "overflow gone: {counts:?}");
    }
}
