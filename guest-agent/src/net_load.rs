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

use std::collections::VecDeque;
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

/// Writes one frame into `buf` (its whole length is the frame): to and from `mac`, the
/// load's ethertype, then magic, `nonce`, `seq` and `sent_ns` (big-endian), zeros after.
pub fn build_frame(buf: &mut [u8], mac: [u8; 6], nonce: u32, seq: u64, sent_ns: u64) {
    debug_assert!(buf.len() >= MIN_FRAME_BYTES);
    buf.fill(0);
    buf[0..6].copy_from_slice(&mac);
    buf[6..12].copy_from_slice(&mac);
    buf[12..14].copy_from_slice(&ETHERTYPE.to_be_bytes());
    buf[14..18].copy_from_slice(&MAGIC);
    buf[18..22].copy_from_slice(&nonce.to_be_bytes());
    buf[22..30].copy_from_slice(&seq.to_be_bytes());
    buf[30..38].copy_from_slice(&sent_ns.to_be_bytes());
}

/// A frame of this load (`nonce`) as `(seq, sent_ns)`; `None` for anything else.
pub fn parse_frame(frame: &[u8], nonce: u32) -> Option<(u64, u64)> {
    if frame.len() < MIN_FRAME_BYTES
        || frame[12..14] != ETHERTYPE.to_be_bytes()
        || frame[14..18] != MAGIC
        || frame[18..22] != nonce.to_be_bytes()
    {
        return None;
    }
    let seq = u64::from_be_bytes(frame[22..30].try_into().ok()?);
    let sent_ns = u64::from_be_bytes(frame[30..38].try_into().ok()?);
    Some((seq, sent_ns))
}

/// Send times at a fixed rate against the clock, without bursts.
#[derive(Debug, Clone)]
pub struct Pacer {
    period_ns: u64,
    next_ns: u64,
}

impl Pacer {
    /// Slots every `1 s / rate_pps`, the first at `start_ns`.
    pub fn new(start_ns: u64, rate_pps: u32) -> Self {
        Pacer {
            period_ns: (1_000_000_000 / u64::from(rate_pps.max(1))).max(1),
            next_ns: start_ns,
        }
    }

    /// The next send slot for a sender at `now_ns`, and how many slots it skipped. A sender
    /// more than a whole period late skips the slots it missed instead of sending them back
    /// to back; one less than a period late sends at once.
    pub fn next(&mut self, now_ns: u64) -> (u64, u64) {
        let mut slot = self.next_ns;
        let mut skipped = 0;
        if now_ns > slot + self.period_ns {
            skipped = (now_ns - slot) / self.period_ns;
            slot += skipped * self.period_ns;
        }
        self.next_ns = slot + self.period_ns;
        (slot, skipped)
    }
}

/// What an arriving echo turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// The echo of a frame in flight: its round trip, ns, and whether it counts (sent in the
    /// window).
    Received {
        /// Receive time − send time, ns.
        rtt_ns: u64,
        /// Sent inside the measurement window.
        counted: bool,
    },
    /// The echo of a frame already given up as lost.
    Late,
    /// Not a frame in flight: a duplicate, or a sequence number or time never sent.
    Unmatched,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    sent_ns: u64,
    counted: bool,
    back: bool,
}

/// The frames sent in the last [`NET_LOST_AFTER_NS`], in sequence order, and their fate.
#[derive(Debug, Default)]
pub struct InFlight {
    /// Sequence number of `slots[0]`.
    first_seq: u64,
    slots: VecDeque<Slot>,
}

impl InFlight {
    /// The next sequence number to send.
    pub fn next_seq(&self) -> u64 {
        self.first_seq + self.slots.len() as u64
    }

    /// Frame [`InFlight::next_seq`] goes out at `sent_ns`.
    pub fn sent(&mut self, sent_ns: u64, counted: bool) -> u64 {
        let seq = self.next_seq();
        self.slots.push_back(Slot {
            sent_ns,
            counted,
            back: false,
        });
        seq
    }

    /// The last frame registered did not go out after all: it is neither received nor lost,
    /// and its sequence number is not reused.
    pub fn unsend(&mut self) {
        if let Some(s) = self.slots.back_mut() {
            s.back = true;
            s.counted = false;
        }
    }

    /// An echo of `seq`, stamped `sent_ns`, arrived at `now_ns`.
    pub fn echo(&mut self, seq: u64, sent_ns: u64, now_ns: u64) -> Echo {
        if seq < self.first_seq {
            return Echo::Late;
        }
        let Some(slot) = usize::try_from(seq - self.first_seq)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
        else {
            return Echo::Unmatched;
        };
        if slot.back || slot.sent_ns != sent_ns {
            return Echo::Unmatched;
        }
        let rtt_ns = now_ns.saturating_sub(slot.sent_ns);
        if rtt_ns >= NET_LOST_AFTER_NS {
            // Not yet expired only because nobody looked: as late as a lost one.
            return Echo::Late;
        }
        slot.back = true;
        Echo::Received {
            rtt_ns,
            counted: slot.counted,
        }
    }

    /// Forgets frames sent [`NET_LOST_AFTER_NS`] or more before `now_ns` (all of them with
    /// `u64::MAX`); returns how many of the counted ones never came back.
    pub fn expire(&mut self, now_ns: u64) -> u64 {
        let mut lost = 0;
        while let Some(s) = self.slots.front() {
            if now_ns.saturating_sub(s.sent_ns) < NET_LOST_AFTER_NS {
                break;
            }
            if !s.back && s.counted {
                lost += 1;
            }
            self.slots.pop_front();
            self.first_seq += 1;
        }
        lost
    }

    /// Whether frames are still out.
    pub fn outstanding(&self) -> bool {
        self.slots.iter().any(|s| !s.back)
    }
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
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_foreign_ones_are_refused() {
        let mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        let mut f = vec![0xffu8; 60];
        build_frame(&mut f, mac, 7, 42, 123_456_789);
        assert_eq!(&f[0..6], &mac);
        assert_eq!(&f[6..12], &mac);
        assert_eq!(&f[12..14], &[0x88, 0xb5]);
        assert!(f[38..].iter().all(|&b| b == 0), "padding is zeroed");
        assert_eq!(parse_frame(&f, 7), Some((42, 123_456_789)));
        assert_eq!(parse_frame(&f, 8), None, "another run's nonce");
        assert_eq!(parse_frame(&f[..37], 7), None, "too short");
        let mut ipv6 = f.clone();
        ipv6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(parse_frame(&ipv6, 7), None);
        let mut other = f.clone();
        other[14] = b'X';
        assert_eq!(parse_frame(&other, 7), None);
    }

    #[test]
    fn macs_as_sysfs_prints_them() {
        assert_eq!(
            parse_mac("52:54:00:12:34:56\n"),
            Some([0x52, 0x54, 0, 0x12, 0x34, 0x56])
        );
        for bad in [
            "",
            "52:54:00:12:34",
            "52:54:00:12:34:56:78",
            "5:54:00:12:34:56",
            "zz:54:00:12:34:56",
        ] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_pacer_keeps_the_rate_and_never_bursts() {
        // 1000 pps: a slot every ms.
        let mut p = Pacer::new(1_000, 1_000);
        assert_eq!(p.next(0), (1_000, 0));
        assert_eq!(p.next(500_000), (1_001_000, 0));
        // Late by less than a period: the slot is kept (sent at once).
        assert_eq!(p.next(2_500_000), (2_001_000, 0));
        // Late by 3.5 periods: three slots skipped, the next one is the current one.
        assert_eq!(p.next(6_501_000), (6_001_000, 3));
        assert_eq!(p.next(6_501_000), (7_001_000, 0));
        // Slots over a long stretch: exactly the rate.
        let mut p = Pacer::new(0, 250);
        let slots: Vec<u64> = (0..250).map(|_| p.next(0).0).collect();
        assert_eq!(slots[249], 249 * 4_000_000);
        assert!(slots.windows(2).all(|w| w[1] - w[0] == 4_000_000));
    }

    #[test]
    fn echoes_are_matched_and_lost_frames_expire_after_a_second() {
        let s = NET_LOST_AFTER_NS;
        let mut f = InFlight::default();
        assert_eq!(f.sent(100, true), 0);
        assert_eq!(f.sent(200, true), 1);
        assert_eq!(f.sent(300, false), 2);
        assert_eq!(
            f.echo(1, 200, 1_200),
            Echo::Received {
                rtt_ns: 1_000,
                counted: true
            }
        );
        assert_eq!(f.echo(1, 200, 1_300), Echo::Unmatched, "a duplicate");
        assert_eq!(
            f.echo(0, 999, 1_300),
            Echo::Unmatched,
            "a send time never used"
        );
        assert_eq!(f.echo(9, 100, 1_300), Echo::Unmatched, "never sent");
        assert_eq!(
            f.echo(2, 300, 400),
            Echo::Received {
                rtt_ns: 100,
                counted: false
            }
        );
        assert!(f.outstanding());
        // Frame 0 is not back a second later: lost; 1 and 2 came back.
        assert_eq!(f.expire(100 + s), 1);
        assert_eq!(f.echo(0, 100, 100 + s + 5), Echo::Late);
        assert_eq!(f.expire(300 + s), 0);
        assert!(!f.outstanding());
        assert_eq!(f.next_seq(), 3);
        // An echo a second late that nobody expired yet is late too.
        assert_eq!(f.sent(10 * s, true), 3);
        assert_eq!(f.echo(3, 10 * s, 11 * s), Echo::Late);
        assert_eq!(f.expire(u64::MAX), 1);
    }

    #[test]
    fn a_frame_that_did_not_go_out_is_never_lost_nor_reused() {
        let mut f = InFlight::default();
        f.sent(1, true);
        f.unsend();
        assert!(!f.outstanding());
        assert_eq!(f.sent(2, true), 1, "sequence numbers move on");
        f.sent(3, true);
        f.unsend();
        assert_eq!(f.expire(u64::MAX), 1);
    }

    #[test]
    fn the_virtio_net_interface_is_found_by_its_driver() {
        use std::os::unix::fs::symlink;
        let root = tempfile::tempdir().unwrap();
        let class = root.path().join("class/net");
        let drivers = root.path().join("bus/drivers");
        for (name, driver) in [
            ("lo", None),
            ("eth1", Some("virtio_net")),
            ("eth0", Some("e1000")),
            ("eth2", Some("virtio_net")),
        ] {
            let dev = root.path().join("devices").join(name);
            std::fs::create_dir_all(&dev).unwrap();
            std::fs::create_dir_all(&class).unwrap();
            if let Some(d) = driver {
                std::fs::create_dir_all(drivers.join(d)).unwrap();
                symlink(drivers.join(d), dev.join("driver")).unwrap();
                std::fs::create_dir_all(class.join(name)).unwrap();
                symlink(&dev, class.join(name).join("device")).unwrap();
            } else {
                std::fs::create_dir_all(class.join(name)).unwrap();
            }
        }
        assert_eq!(find_virtio_net(&class).as_deref(), Some("eth1"));
        assert_eq!(find_virtio_net(&root.path().join("none")), None);
    }
}
