//! The clocks the measurement loops read, and the TSC calibration.
//!
//! Busy-poll and ring read the TSC with `rdtsc` when they can: inside a TCG guest `clock_gettime`
//! costs ~2 µs and `rdtsc` ~15 ns (docs/architecture.md, "The instrument"). The TSC frequency is
//! measured against `CLOCK_MONOTONIC_RAW` (never slewed by NTP) as oslat does (rt-tests
//! `src/oslat/oslat.c`, `measure_counter_mhz`), made robust against a CPU taken away in the
//! middle of a measurement, which on a VM or under TCG is the rule rather than the exception:
//!
//! * every end point of a window is the tightest of [`BRACKET_TRIES`] brackets
//!   `rdtsc; clock_gettime; rdtsc` (a bracket the vCPU was descheduled in is wide, and dropped);
//! * the frequency is the median of [`CALIBRATION_WINDOWS`] consecutive windows, and the spread
//!   between the windows is recorded with it (`ClockInfo::calibration_spread_ppm`).
//!
//! Ticks become ns by a 32.32 fixed-point multiply in 128-bit arithmetic, so the hot loop has no
//! division and no float. [`Clock::mono_at`] maps a tick count back to `CLOCK_MONOTONIC`, so a
//! result can say when its measurement window opened and closed in the system's own time.

use pinlat::agentcfg::ClockChoice;
use pinlat::wire::{ClockInfo, ClockSource};

/// Length of one calibration window, ns.
pub const CALIBRATION_WINDOW_NS: u64 = 50_000_000;
/// Number of calibration windows; the frequency is their median.
pub const CALIBRATION_WINDOWS: usize = 5;
/// Brackets tried per calibration point; the tightest one is kept.
pub const BRACKET_TRIES: usize = 16;
/// `Auto` falls back to `CLOCK_MONOTONIC` when the calibration windows' interquartile spread
/// exceeds this, ppm (a TSC whose rate changes is no clock).
pub const MAX_CALIBRATION_SPREAD_PPM: u32 = 5_000;

/// `CLOCK_MONOTONIC` now, ns.
pub use pinlat::host::monotonic_ns as mono_ns;

/// The time-stamp counter now, ticks, read as oslat's `frc()` and the kernel's
/// `rdtsc_ordered()` do: `lfence; rdtsc`. Without the fence the CPU may execute `rdtsc` before
/// earlier instructions finish, or let later ones start first, so a gap between two reads
/// could be hidden or invented by out-of-order execution.
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[allow(unused_unsafe)]
    // SAFETY: `lfence` and `rdtsc` have no preconditions on x86-64 (SSE2 is part of the
    // baseline); they only order execution and read the counter.
    unsafe {
        core::arch::x86_64::_mm_lfence();
        core::arch::x86_64::_rdtsc()
    }
}

/// A clock read in a measurement loop; monomorphised so the loop has no branch on the kind.
pub trait TickSource: Copy + Send + 'static {
    /// Now, in this source's ticks.
    fn now(self) -> u64;
}

/// The TSC.
#[derive(Clone, Copy, Debug)]
pub struct Tsc;

impl TickSource for Tsc {
    #[inline(always)]
    fn now(self) -> u64 {
        rdtsc()
    }
}

/// `CLOCK_MONOTONIC`, ticks are ns.
#[derive(Clone, Copy, Debug)]
pub struct Mono;

impl TickSource for Mono {
    #[inline(always)]
    fn now(self) -> u64 {
        mono_ns()
    }
}

/// The chosen clock, its tick → ns conversion, and one reference point tying its ticks to
/// `CLOCK_MONOTONIC`.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// What the results say about the clock.
    pub info: ClockInfo,
    /// ns per tick, 32.32 fixed point.
    ns_per_tick_fp: u64,
    /// ticks per ns, 32.32 fixed point.
    ticks_per_ns_fp: u64,
    /// A tick count read together with [`Clock::ref_mono_ns`].
    ref_ticks: u64,
    /// `CLOCK_MONOTONIC` at [`Clock::ref_ticks`], ns.
    ref_mono_ns: u64,
}

impl Clock {
    /// `CLOCK_MONOTONIC`: one tick is one ns.
    pub fn monotonic(invariant_tsc: bool) -> Self {
        Clock {
            info: ClockInfo {
                source: ClockSource::Monotonic,
                tsc_hz: None,
                invariant_tsc,
                calibration_spread_ppm: None,
            },
            ns_per_tick_fp: 1 << 32,
            ticks_per_ns_fp: 1 << 32,
            ref_ticks: 0,
            ref_mono_ns: 0,
        }
    }

    /// The TSC at `hz`, with no calibration spread known and the reference point taken now.
    #[cfg(test)]
    pub fn tsc(hz: u64, invariant_tsc: bool) -> Self {
        Clock::from_calibration(Calibration { hz, spread_ppm: 0 }, invariant_tsc)
    }

    /// The TSC as a calibration measured it.
    pub fn from_calibration(cal: Calibration, invariant_tsc: bool) -> Self {
        let hz = cal.hz.max(1);
        let (ref_ticks, ref_mono_ns) = tight_pair(libc::CLOCK_MONOTONIC);
        Clock {
            info: ClockInfo {
                source: ClockSource::Tsc,
                tsc_hz: Some(hz),
                invariant_tsc,
                calibration_spread_ppm: Some(cal.spread_ppm),
            },
            ns_per_tick_fp: ((1_000_000_000u128 << 32) / hz as u128) as u64,
            ticks_per_ns_fp: (((hz as u128) << 32) / 1_000_000_000) as u64,
            ref_ticks,
            ref_mono_ns,
        }
    }

    /// Pick the clock for `choice`, calibrating the TSC if it is used.
    ///
    /// `Auto` takes the TSC, as oslat always does, unless the calibration windows disagree by
    /// more than [`MAX_CALIBRATION_SPREAD_PPM`]. TCG guests, for one, hide the invariant bit and
    /// use an emulated clocksource costing microseconds per read, yet their TSC runs at the
    /// host's constant rate. The calibration and its spread are recorded either way.
    pub fn choose(choice: ClockChoice) -> Self {
        let invariant = invariant_tsc();
        match choice {
            ClockChoice::Monotonic => Clock::monotonic(invariant),
            ClockChoice::Tsc => Clock::from_calibration(calibrate_tsc(), invariant),
            ClockChoice::Auto => {
                let cal = calibrate_tsc();
                if cal.spread_ppm <= MAX_CALIBRATION_SPREAD_PPM {
                    Clock::from_calibration(cal, invariant)
                } else {
                    let mut c = Clock::monotonic(invariant);
                    c.info.calibration_spread_ppm = Some(cal.spread_ppm);
                    c
                }
            }
        }
    }

    /// `CLOCK_MONOTONIC` at a tick count of this clock, ns.
    pub fn mono_at(self, ticks: u64) -> u64 {
        match self.info.source {
            ClockSource::Monotonic => ticks,
            ClockSource::Tsc => {
                if ticks >= self.ref_ticks {
                    self.ref_mono_ns + self.to_ns(ticks - self.ref_ticks)
                } else {
                    self.ref_mono_ns
                        .saturating_sub(self.to_ns(self.ref_ticks - ticks))
                }
            }
        }
    }

    /// Convert a tick count to ns.
    #[inline(always)]
    pub fn to_ns(self, ticks: u64) -> u64 {
        ((ticks as u128 * self.ns_per_tick_fp as u128) >> 32) as u64
    }

    /// Convert ns to ticks.
    pub fn to_ticks(self, ns: u64) -> u64 {
        ((ns as u128 * self.ticks_per_ns_fp as u128) >> 32) as u64
    }
}

/// CPUID leaf 0x8000_0007 EDX bit 8: the TSC runs at a constant rate in every P- and C-state.
pub fn invariant_tsc() -> bool {
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86-64 CPU; leaf 0x8000_0000 gives the highest extended
    // leaf, and 0x8000_0007 is only read when it exists.
    unsafe {
        let max = core::arch::x86_64::__cpuid(0x8000_0000).eax;
        max >= 0x8000_0007 && core::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0
    }
}

/// A measured TSC frequency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Calibration {
    /// Median frequency of the windows, Hz.
    pub hz: u64,
    /// Interquartile spread of the windows' frequencies, ppm of `hz`.
    pub spread_ppm: u32,
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clocks used here always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The tightest of [`BRACKET_TRIES`] `rdtsc; clock_gettime(clock); rdtsc` brackets, as
/// (TSC at the middle of the bracket, clock ns).
fn tight_pair(clock: libc::clockid_t) -> (u64, u64) {
    let mut best = (u64::MAX, 0u64, 0u64);
    for _ in 0..BRACKET_TRIES {
        let a = rdtsc();
        let m = clock_ns(clock);
        let b = rdtsc();
        let width = b.wrapping_sub(a);
        if width < best.0 {
            best = (width, a / 2 + b / 2, m);
        }
    }
    (best.1, best.2)
}

/// Frequencies (Hz) of consecutive windows of about `window_ns`, against `CLOCK_MONOTONIC_RAW`.
pub fn calibration_windows(windows: usize, window_ns: u64) -> Vec<u64> {
    let mut prev = tight_pair(libc::CLOCK_MONOTONIC_RAW);
    (0..windows)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_nanos(window_ns));
            let next = tight_pair(libc::CLOCK_MONOTONIC_RAW);
            let dm = next.1.saturating_sub(prev.1).max(1);
            let hz = (next.0.wrapping_sub(prev.0) as u128 * 1_000_000_000 / dm as u128) as u64;
            prev = next;
            hz
        })
        .collect()
}

/// The median and interquartile spread of window frequencies.
pub fn summarize_windows(mut hz: Vec<u64>) -> Calibration {
    if hz.is_empty() {
        return Calibration {
            hz: 0,
            spread_ppm: u32::MAX,
        };
    }
    hz.sort_unstable();
    let n = hz.len();
    let median = hz[n / 2].max(1);
    let (lo, hi) = (hz[n / 4], hz[(3 * n) / 4]);
    let spread = (hi - lo) as u128 * 1_000_000 / median as u128;
    Calibration {
        hz: median,
        spread_ppm: u32::try_from(spread).unwrap_or(u32::MAX),
    }
}

/// Measures the TSC frequency: the median of [`CALIBRATION_WINDOWS`] windows of
/// [`CALIBRATION_WINDOW_NS`].
pub fn calibrate_tsc() -> Calibration {
    summarize_windows(calibration_windows(
        CALIBRATION_WINDOWS,
        CALIBRATION_WINDOW_NS,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_are_exact_enough() {
        let c = Clock::tsc(2_597_000_000, true);
        // 1 s of ticks is 1 s within 1 ns per s.
        assert!(c.to_ns(2_597_000_000).abs_diff(1_000_000_000) <= 1);
        assert!(c.to_ticks(1_000_000_000).abs_diff(2_597_000_000) <= 3);
        assert_eq!(c.to_ns(0), 0);
        let m = Clock::monotonic(false);
        assert_eq!(m.to_ns(123_456_789), 123_456_789);
        assert_eq!(m.to_ticks(42), 42);
    }

    #[test]
    fn calibration_is_a_median_with_its_spread() {
        // One disturbed window (the vCPU taken away inside a bracket) moves neither.
        let c = summarize_windows(vec![
            2_300_000_000,
            2_300_000_100,
            2_412_000_000,
            2_299_999_900,
            2_300_000_050,
        ]);
        assert_eq!(c.hz, 2_300_000_050);
        assert_eq!(c.spread_ppm, 0);
        let spread = summarize_windows(vec![1_000, 1_010, 1_020, 1_030]);
        assert_eq!(spread.spread_ppm, 19_607);
        assert_eq!(summarize_windows(Vec::new()).spread_ppm, u32::MAX);
    }

    #[test]
    fn calibration_measures_a_plausible_rate() {
        let c = summarize_windows(calibration_windows(3, 20_000_000));
        assert!(c.hz > 100_000_000, "TSC at {} Hz", c.hz);
    }

    #[test]
    fn mono_at_maps_ticks_back_to_clock_monotonic() {
        let c = Clock::tsc(1_000_000_000, true);
        assert_eq!(c.mono_at(c.ref_ticks + 5_000), c.ref_mono_ns + 5_000);
        assert_eq!(c.mono_at(c.ref_ticks - 5_000), c.ref_mono_ns - 5_000);
        let m = Clock::monotonic(true);
        assert_eq!(m.mono_at(42), 42);
    }
}
