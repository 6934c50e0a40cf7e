//! The `net` housekeeping load: raw Ethernet frames through the guest's virtio-net NIC, which
//! the host's backend (`host-runner/src/devices.rs`, `NetEcho`) sends straight back, so QEMU's
//! main loop (or the netdev's thread) works both ways; each frame's round trip is measured
//! (issue #12, "both sides of the trade-off"). The guest has no IP configuration and needs
//! none: an `AF_PACKET` socket of a local experimental ethertype ([`ETHERTYPE`], IEEE 802
//! "Local Experimental Ethertype 1") bound to the interface.
//!
//! One sender thread paces frames at `rate_pps` against `CLOCK_MONOTONIC` ([`Pacer`]: a sender
//! more than a period behind skips the missed slots, counted, rather than bursting), each frame
//! addressed to the interface's own MAC and carrying a sequence number and its send time
//! ([`build_frame`]). One receiver thread matches echoes to the frames in flight
//! ([`InFlight`]): back within [`NET_LOST_AFTER_NS`] (1 s) is received and its round trip
//! recorded, later is lost. When the load stops, the receiver waits up to that long for the
//! frames still out, so every frame sent ends received or lost.
//!
//! In a guest (PID 1) without an interface named, the load takes the first interface in
//! `/sys/class/net` whose driver is `virtio_net`, turns IPv6 off on it (no autoconfiguration
//! chatter on the link) and brings it up (`SIOCSIFFLAGS` `IFF_UP`). Anywhere else it runs only
//! on an interface named in the config, and changes nothing on it.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::sys::socket::{getsockopt, recvfrom, send, setsockopt, sockopt, LinkAddr, MsgFlags};
use nix::sys::time::TimeVal;
use pinlat::agentcfg::NetLoad;
use pinlat::wire::{LoadKind, LoadResult, NetCounts, OpKind, NET_LOST_AFTER_NS};

use crate::clock::mono_ns;
use crate::opstats::{OpRecorder, Window};
use crate::thread::STACK_BYTES;

mod frames;

pub use frames::{build_frame, parse_frame, Echo, InFlight, Pacer};

/// The frames' ethertype: IEEE 802 Local Experimental Ethertype 1.
pub const ETHERTYPE: u16 = 0x88b5;
/// First bytes of a frame's payload.
const MAGIC: [u8; 4] = *b"PLNT";
/// Ethernet header: destination, source, ethertype.
const HEADER_BYTES: usize = 14;
/// Header, magic, nonce, sequence number, send time.
const MIN_FRAME_BYTES: usize = HEADER_BYTES + 4 + 4 + 8 + 8;
/// How long a blocked `recv` waits before the receiver looks at the stop flag and the clock.
const RECV_TIMEOUT: Duration = Duration::from_millis(50);
/// Longest sleep of the sender before it looks at the stop flag.
const SEND_SLEEP_MAX_NS: u64 = 50_000_000;
/// How long to wait for the interface's carrier after bringing it up.
const CARRIER_WAIT: Duration = Duration::from_secs(2);
/// Pause after a failed send or receive.
const ERROR_BACKOFF: Duration = Duration::from_millis(1);

/// Where the kernel lists network interfaces.
const SYS_CLASS_NET: &str = "/sys/class/net";

/// The first interface under `class_net` (a `/sys/class/net`) whose driver is `virtio_net`,
/// by name.
pub fn find_virtio_net(class_net: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(class_net)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names.into_iter().find(|n| {
        std::fs::read_link(class_net.join(n).join("device/driver"))
            .ok()
            .and_then(|l| l.file_name().map(|f| f == "virtio_net"))
            .unwrap_or(false)
    })
}

/// A MAC address as sysfs prints it (`52:54:00:12:34:56`).
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for b in mac.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Everything sender and receiver share, behind one lock.
#[derive(Debug, Default)]
struct State {
    in_flight: InFlight,
    counts: NetCounts,
    rtt: OpRecorder,
    /// When the sender stopped (`CLOCK_MONOTONIC` ns), once it has.
    sender_done_ns: Option<u64>,
}

/// An `AF_PACKET` raw socket of [`ETHERTYPE`] bound to one interface.
struct PacketSocket(OwnedFd);

impl PacketSocket {
    /// An unbound socket of the load's ethertype.
    fn new() -> io::Result<Self> {
        // SAFETY: a plain syscall with constant arguments; the result is checked below.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(ETHERTYPE.to_be()),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a descriptor just returned by socket(2), owned by nothing else.
        Ok(PacketSocket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Binds the socket to interface `ifindex`, which must be up: bound to a down interface a
    /// packet socket carries `ENETDOWN` into its next send or receive (`packet_do_bind`).
    fn bind(&self, ifindex: i32) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain old data, for which all zero bytes is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = ETHERTYPE.to_be();
        addr.sll_ifindex = ifindex;
        // SAFETY: `addr` is a valid sockaddr_ll whose size is passed; the fd is open.
        let r = unsafe {
            libc::bind(
                self.0.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // Our own transmissions are not echoes (Linux 4.20+; older kernels: filtered on receive).
        let one: libc::c_int = 1;
        // SAFETY: `one` is a c_int whose size is passed; an unknown option only fails the call.
        unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_IGNORE_OUTGOING,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        setsockopt(
            &self.0,
            sockopt::ReceiveTimeout,
            &TimeVal::new(0, RECV_TIMEOUT.as_micros() as libc::suseconds_t),
        )?;
        // Reading SO_ERROR clears an error left from before the interface was up.
        let _ = getsockopt(&self.0, sockopt::SocketError);
        Ok(())
    }

    /// `ifname`'s flags, with `IFF_UP` set if it was not; whether it was down.
    fn bring_up(&self, ifname: &str) -> io::Result<bool> {
        // SAFETY: ifreq is plain old data, for which all zero bytes is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        let name = ifname.as_bytes();
        if name.len() >= req.ifr_name.len() {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        for (d, s) in req.ifr_name.iter_mut().zip(name) {
            *d = *s as libc::c_char;
        }
        // SAFETY: `req` is a valid ifreq naming the interface; SIOCGIFFLAGS writes its flags.
        if unsafe { libc::ioctl(self.0.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: SIOCGIFFLAGS filled the union's `ifru_flags` member.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        if flags & libc::IFF_UP as libc::c_short != 0 {
            return Ok(false);
        }
        req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
        // SAFETY: as above; SIOCSIFFLAGS reads the name and flags (needs CAP_NET_ADMIN).
        if unsafe { libc::ioctl(self.0.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(true)
    }
}

/// The interface the load uses and what it knows of it.
struct Interface {
    name: String,
    index: i32,
    mac: [u8; 6],
}

fn interface(cfg: &NetLoad, in_guest: bool) -> Result<Option<Interface>> {
    let class_net = Path::new(SYS_CLASS_NET);
    let name = match (&cfg.interface, in_guest) {
        (Some(n), _) => n.clone(),
        (None, true) => find_virtio_net(class_net).ok_or_else(|| {
            anyhow!(
                "net load: no virtio-net interface in {SYS_CLASS_NET} (none whose device/driver is virtio_net): the scenario needs [[scenarios]] guest-net's NIC"
            )
        })?,
        (None, false) => return Ok(None),
    };
    let dir = class_net.join(&name);
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .with_context(|| format!("net load: cannot read {}", dir.join(f).display()))
    };
    let index = read("ifindex")?
        .trim()
        .parse()
        .with_context(|| format!("net load: interface {name} has no usable ifindex"))?;
    let address = read("address")?;
    let mac = parse_mac(&address).ok_or_else(|| {
        anyhow!("net load: interface {name} has no Ethernet address ({address:?})")
    })?;
    Ok(Some(Interface { name, index, mac }))
}

/// A started net load, until [`NetRun::finish`].
#[derive(Debug)]
pub struct NetRun {
    interface: String,
    cpus: Vec<u32>,
    window: Window,
    rate_pps: u32,
    state: Arc<Mutex<State>>,
}

/// Starts the net load on `cpus`, its two threads appended to `threads`; `Ok(None)` when it
/// has nothing to run on (natively, no interface named).
pub fn start(
    cfg: &NetLoad,
    cpus: &[u32],
    in_guest: bool,
    window: Window,
    stop: &Arc<AtomicBool>,
    threads: &mut Vec<(String, JoinHandle<Result<()>>)>,
) -> Result<Option<NetRun>> {
    let Some(ifc) = interface(cfg, in_guest)? else {
        return Ok(None);
    };
    let sock = PacketSocket::new().with_context(|| {
        format!("net load: cannot open a raw socket (AF_PACKET, ethertype {ETHERTYPE:#06x})")
    })?;
    if in_guest && cfg.interface.is_none() {
        // No router solicitations, DAD or MLD on a link whose every frame comes back.
        let _ = std::fs::write(
            format!("/proc/sys/net/ipv6/conf/{}/disable_ipv6", ifc.name),
            "1",
        );
        sock.bring_up(&ifc.name)
            .with_context(|| format!("net load: cannot bring {} up (SIOCSIFFLAGS)", ifc.name))?;
        wait_for_carrier(&ifc.name);
    } else {
        let flags = std::fs::read_to_string(Path::new(SYS_CLASS_NET).join(&ifc.name).join("flags"))
            .ok()
            .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok());
        if flags.is_some_and(|f| f & libc::IFF_UP as u32 == 0) {
            bail!(
                "net load: interface {} is down (outside a guest the agent does not change it): bring it up or name another",
                ifc.name
            );
        }
    }
    sock.bind(ifc.index)
        .with_context(|| format!("net load: cannot bind the raw socket to {}", ifc.name))?;
    let sock = Arc::new(sock);
    let state = Arc::new(Mutex::new(State::default()));
    let nonce = std::process::id() ^ (mono_ns() as u32);
    let run = NetRun {
        interface: ifc.name.clone(),
        cpus: cpus.to_vec(),
        window,
        rate_pps: cfg.rate_pps,
        state: state.clone(),
    };
    let sender = Sender {
        sock: sock.clone(),
        state: state.clone(),
        stop: stop.clone(),
        cpus: cpus.to_vec(),
        window,
        mac: ifc.mac,
        nonce,
        rate_pps: cfg.rate_pps,
        frame_bytes: cfg.frame_bytes as usize,
    };
    let receiver = Receiver {
        sock,
        state,
        stop: stop.clone(),
        cpus: cpus.to_vec(),
        window,
        nonce,
        frame_bytes: cfg.frame_bytes as usize,
    };
    for (name, body) in [
        (
            "load-net-send",
            Box::new(move || sender.run()) as Box<dyn FnOnce() -> Result<()> + Send>,
        ),
        ("load-net-recv", Box::new(move || receiver.run())),
    ] {
        let h = std::thread::Builder::new()
            .name(name.into())
            .stack_size(STACK_BYTES)
            .spawn(body)
            .with_context(|| format!("net load: cannot start thread {name}"))?;
        threads.push((name.into(), h));
    }
    Ok(Some(run))
}

fn wait_for_carrier(name: &str) {
    let path = Path::new(SYS_CLASS_NET).join(name).join("carrier");
    let deadline = std::time::Instant::now() + CARRIER_WAIT;
    while std::time::Instant::now() < deadline {
        if std::fs::read_to_string(&path).is_ok_and(|c| c.trim() == "1") {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl NetRun {
    /// The load's result, its window ending at `stop_ns`. Call once both threads have stopped.
    pub fn finish(self, stop_ns: u64) -> LoadResult {
        let mut st = std::mem::take(&mut *self.state.lock().unwrap_or_else(|p| p.into_inner()));
        // Whatever is still out after the receiver's wait is lost.
        st.counts.lost += st.in_flight.expire(u64::MAX);
        LoadResult {
            load: LoadKind::Net,
            device: self.interface,
            direct: None,
            cpus: self.cpus,
            duration_ns: self.window.length_ns(stop_ns),
            target_per_s: Some(u64::from(self.rate_pps)),
            ops: [(OpKind::Rtt, st.rtt.finish())].into(),
            net: Some(st.counts),
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn place(cpus: &[u32]) -> Result<()> {
    pinlat::sched::set_affinity(0, cpus)
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("net load: cannot put a thread on CPUs {cpus:?}"))
}

struct Sender {
    sock: Arc<PacketSocket>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    cpus: Vec<u32>,
    window: Window,
    mac: [u8; 6],
    nonce: u32,
    rate_pps: u32,
    frame_bytes: usize,
}

impl Sender {
    fn run(self) -> Result<()> {
        let r = self.send_until_stopped();
        // However the sender ended, the receiver's wait for the last echoes starts now.
        lock(&self.state).sender_done_ns = Some(mono_ns());
        r
    }

    fn send_until_stopped(&self) -> Result<()> {
        place(&self.cpus)?;
        let mut frame = vec![0u8; self.frame_bytes];
        let mut pacer = Pacer::new(mono_ns(), self.rate_pps);
        'send: while !self.stop.load(Ordering::Relaxed) {
            let (slot, skipped) = pacer.next(mono_ns());
            if skipped > 0 && self.window.counts(slot) {
                lock(&self.state).counts.skipped_slots += skipped;
            }
            // Sleep to the slot in short steps, so a stop is seen.
            loop {
                let now = mono_ns();
                if now >= slot {
                    break;
                }
                if self.stop.load(Ordering::Relaxed) {
                    break 'send;
                }
                std::thread::sleep(Duration::from_nanos((slot - now).min(SEND_SLEEP_MAX_NS)));
            }
            let sent_ns = mono_ns();
            let counted = self.window.counts(sent_ns);
            let seq = {
                // Registered before it goes out: the echo may be back before `send` returns.
                let mut st = lock(&self.state);
                let seq = st.in_flight.sent(sent_ns, counted);
                if counted {
                    st.counts.sent += 1;
                }
                seq
            };
            build_frame(&mut frame, self.mac, self.nonce, seq, sent_ns);
            let r = send(self.sock.0.as_raw_fd(), &frame, MsgFlags::empty());
            let at = || self.window.at(sent_ns);
            let failure = match r {
                Ok(n) if n == frame.len() => None,
                Ok(n) => Some(format!(
                    "send of {} bytes {}: only {n} went out",
                    frame.len(),
                    at()
                )),
                Err(e) => Some(format!("send of {} bytes {}: {e}", frame.len(), at())),
            };
            if let Some(msg) = failure {
                {
                    let mut st = lock(&self.state);
                    st.in_flight.unsend();
                    if counted {
                        st.counts.sent -= 1;
                        st.rtt.error(|| msg);
                    }
                }
                std::thread::sleep(ERROR_BACKOFF);
            }
        }
        Ok(())
    }
}

struct Receiver {
    sock: Arc<PacketSocket>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    cpus: Vec<u32>,
    window: Window,
    nonce: u32,
    frame_bytes: usize,
}

impl Receiver {
    fn run(self) -> Result<()> {
        place(&self.cpus)?;
        // Room for a frame longer than ours: it is not ours, but must not be truncated into one.
        let mut buf = vec![0u8; self.frame_bytes.max(1514) + 64];
        loop {
            if self.stop.load(Ordering::Relaxed) {
                let st = lock(&self.state);
                // After the sender's last frame, wait up to the loss limit for what is still out.
                if let Some(done) = st.sender_done_ns {
                    if !st.in_flight.outstanding()
                        || mono_ns().saturating_sub(done) >= NET_LOST_AFTER_NS
                    {
                        break;
                    }
                }
            }
            match recvfrom::<LinkAddr>(self.sock.0.as_raw_fd(), &mut buf) {
                Ok((n, addr)) => {
                    let now = mono_ns();
                    let outgoing = addr.is_some_and(|a| a.pkttype() == libc::PACKET_OUTGOING);
                    if !outgoing {
                        self.arrived(&buf[..n], now);
                    }
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(e) => {
                    let now = mono_ns();
                    if self.window.counts(now) {
                        let at = self.window.at(now);
                        lock(&self.state).rtt.error(|| format!("recv {at}: {e}"));
                    }
                    std::thread::sleep(ERROR_BACKOFF);
                }
            }
            let mut st = lock(&self.state);
            let lost = st.in_flight.expire(mono_ns());
            st.counts.lost += lost;
        }
        Ok(())
    }

    fn arrived(&self, frame: &[u8], now: u64) {
        let mut st = lock(&self.state);
        let in_window = self.window.counts(now);
        match parse_frame(frame, self.nonce) {
            Some((seq, sent_ns)) => match st.in_flight.echo(seq, sent_ns, now) {
                Echo::Received {
                    rtt_ns,
                    counted: true,
                } => {
                    st.counts.received += 1;
                    st.rtt.record(rtt_ns, frame.len() as u64);
                }
                // Sent before the window opened.
                Echo::Received { counted: false, .. } => {}
                Echo::Late if in_window => st.counts.late += 1,
                Echo::Unmatched if in_window => st.counts.unmatched += 1,
                _ => {}
            },
            // Our ethertype, but not our frame (another run's nonce, or damaged).
            None if in_window => st.counts.unmatched += 1,
            None => {}
        }
    }
}

#[cfg(test)]
mod tests;
