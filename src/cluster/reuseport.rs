//! Round-robin in the kernel: each worker accepts from a listening socket of
//! its own, all bound to the app's address with SO_REUSEPORT, and a small
//! eBPF program (SK_REUSEPORT) picks the socket of the next worker in turn
//! for each new connection. The supervisor keeps every socket and rewrites
//! the program's socket map as workers come and go; it touches no
//! connection. Needs CAP_BPF (or root); where the kernel refuses, the
//! supervisor's own accept-and-hand-over round-robin serves instead.
//!
//! The program is assembled here (no compiler for BPF is needed):
//!
//! ```text
//! n = ctl[1]            // sockets in turn (0: let the kernel hash)
//! i = fetch_add(ctl[0], 1) % n
//! sk_select_reuseport(ctx, socks, &i)
//! return SK_PASS        // not selected: the kernel's hash picks
//! ```

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The most sockets one listen address can have in turn.
pub const MAX_SOCKETS: u32 = 256;

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
const MOD64_REG: u8 = 0x9f; // BPF_ALU64 | BPF_MOD | BPF_X
const ST_W: u8 = 0x62; // BPF_ST | BPF_MEM | BPF_W
const STX_W: u8 = 0x63; // BPF_STX | BPF_MEM | BPF_W
const LDX_DW: u8 = 0x79; // BPF_LDX | BPF_MEM | BPF_DW
const LD_IMM64: u8 = 0x18; // BPF_LD | BPF_IMM | BPF_DW
const ATOMIC_DW: u8 = 0xdb; // BPF_STX | BPF_ATOMIC | BPF_DW
const JEQ_IMM: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const CALL: u8 = 0x85; // BPF_JMP | BPF_CALL
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

const PSEUDO_MAP_FD: u8 = 1;
const FETCH_ADD: i32 = 0x01; // BPF_ADD | BPF_FETCH
const HELPER_MAP_LOOKUP: i32 = 1;
const HELPER_SK_SELECT_REUSEPORT: i32 = 82;
const SK_PASS: i32 = 1;

/// Index in the control map of the turn counter, and of the number of
/// sockets in turn.
const CTL_TURN: u32 = 0;
const CTL_COUNT: u32 = 1;

/// The program, for a control map and a socket map (by descriptor, which
/// the kernel resolves at load time).
pub fn program(ctl: RawFd, socks: RawFd) -> Vec<Insn> {
    let map = |fd: RawFd| [insn(LD_IMM64, 1, PSEUDO_MAP_FD, 0, fd), insn(0, 0, 0, 0, 0)];
    let lookup = |key: u32, fd: RawFd| {
        let mut v = vec![insn(ST_W, 10, 0, -4, key as i32)];
        v.extend(map(fd));
        v.extend([
            insn(MOV64_REG, 2, 10, 0, 0),
            insn(ADD64_IMM, 2, 0, 0, -4),
            insn(CALL, 0, 0, 0, HELPER_MAP_LOOKUP),
        ]);
        v
    };
    let mut p = vec![insn(MOV64_REG, 6, 1, 0, 0)]; // r6 = ctx
    p.extend(lookup(CTL_COUNT, ctl));
    p.push(insn(JEQ_IMM, 0, 0, PASS, 0)); // no map value: pass
    p.push(insn(LDX_DW, 7, 0, 0, 0)); // r7 = count
    p.push(insn(JEQ_IMM, 7, 0, PASS, 0)); // none in turn: pass
    p.extend(lookup(CTL_TURN, ctl));
    p.push(insn(JEQ_IMM, 0, 0, PASS, 0));
    p.extend([
        insn(MOV64_IMM, 1, 0, 0, 1),
        insn(ATOMIC_DW, 0, 1, 0, FETCH_ADD), // r1 = turn++
        insn(MOD64_REG, 1, 7, 0, 0),         // r1 %= count
        insn(STX_W, 10, 1, -8, 0),           // key = r1
        insn(MOV64_REG, 1, 6, 0, 0),
    ]);
    p.push(insn(LD_IMM64, 2, PSEUDO_MAP_FD, 0, socks));
    p.push(insn(0, 0, 0, 0, 0));
    p.extend([
        insn(MOV64_REG, 3, 10, 0, 0),
        insn(ADD64_IMM, 3, 0, 0, -8),
        insn(MOV64_IMM, 4, 0, 0, 0),
        insn(CALL, 0, 0, 0, HELPER_SK_SELECT_REUSEPORT),
    ]);
    let end = p.len();
    p.extend([insn(MOV64_IMM, 0, 0, 0, SK_PASS), insn(EXIT, 0, 0, 0, 0)]);
    // Every jump marked PASS goes to the `return SK_PASS` at `end`.
    for (at, i) in p.iter_mut().enumerate() {
        if i.code == JEQ_IMM && i.off == PASS {
            i.off = (end - at - 1) as i16;
        }
    }
    p
}

/// A placeholder jump offset, resolved once the program's end is known.
const PASS: i16 = i16::MAX;

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

fn map_update(map: &OwnedFd, key: u32, value: u64) -> io::Result<()> {
    let mut a = Attr::new()
        .u32_at(0, map.as_raw_fd() as u32)
        .u64_at(8, &key as *const u32 as u64)
        .u64_at(16, &value as *const u64 as u64);
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
    /// The sockets in `socks`, by entry, so that only changes are written.
    published: std::sync::Mutex<Vec<RawFd>>,
}

impl Steering {
    /// Loads the program; fails where the kernel does not allow it (no
    /// CAP_BPF, an old kernel, a seccomp filter).
    pub fn load() -> io::Result<Steering> {
        let ctl = map_create(MAP_TYPE_ARRAY, 8, 2)?;
        let socks = map_create(MAP_TYPE_REUSEPORT_SOCKARRAY, 8, MAX_SOCKETS)?;
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

    /// The sockets that take connections, in turn, from now on (listening,
    /// in the group). None: the kernel's hash spreads them over the group.
    pub fn publish(&self, sockets: &[BorrowedFd<'_>]) -> io::Result<()> {
        let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        let new: Vec<RawFd> = sockets
            .iter()
            .take(MAX_SOCKETS as usize)
            .map(|s| s.as_raw_fd())
            .collect();
        // Shrink the turn first, so no connection picks an entry that goes.
        if new.len() < published.len() {
            map_update(&self.ctl, CTL_COUNT, new.len() as u64)?;
        }
        // A socket can be in one entry only: entries that change are
        // emptied before any is filled (one picked meanwhile is hashed).
        let changed: Vec<usize> = (0..new.len().max(published.len()))
            .filter(|&i| new.get(i) != published.get(i))
            .collect();
        for &i in changed.iter().filter(|&&i| i < published.len()) {
            // Already gone if its socket closed.
            let _ = map_delete(&self.socks, i as u32);
        }
        for &i in changed.iter().filter(|&&i| i < new.len()) {
            map_update(&self.socks, i as u32, new[i] as u64)?;
        }
        map_update(&self.ctl, CTL_COUNT, new.len() as u64)?;
        *published = new;
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
    fn every_jump_lands_on_the_pass_and_the_program_ends_with_exit() {
        let p = program(7, 8);
        let end = p.len() - 2;
        assert_eq!(p[end], insn(MOV64_IMM, 0, 0, 0, SK_PASS));
        assert_eq!(p[end + 1].code, EXIT);
        let jumps: Vec<usize> = (0..p.len()).filter(|&i| p[i].code == JEQ_IMM).collect();
        assert_eq!(jumps.len(), 3);
        for j in jumps {
            assert_eq!(j + 1 + p[j].off as usize, end, "jump at {j}");
        }
        let maps: Vec<i32> = p
            .iter()
            .filter(|i| i.code == LD_IMM64)
            .map(|i| i.imm)
            .collect();
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

    #[test]
    fn connections_go_to_the_published_sockets_in_turn() {
        let steering = match Steering::load() {
            Ok(s) => s,
            Err(e) => {
                // The daemon falls back to its own round-robin there; the
                // distributor's tests cover that.
                eprintln!("skipped: this kernel refuses the program ({e})");
                return;
            }
        };
        let first = reuseport_listener("127.0.0.1:0".parse().unwrap());
        let addr = first.local_addr().unwrap().as_socket().unwrap();
        let ls = vec![first, reuseport_listener(addr), reuseport_listener(addr)];
        steering.attach(ls[0].as_fd()).unwrap();
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
}
