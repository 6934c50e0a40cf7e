//! The clocks the measurement loops read, and the TSC calibration.
//!
//! Busy-poll and ring read the TSC with `rdtsc` when they can: inside a TCG guest `clock_gettime`
//! costs ~2 µs and `rdtsc` ~15 ns (DESIGN.md). The TSC frequency is measured against
//! `CLOCK_MONOTONIC` over [`CALIBRATION_NS`], as oslat does (rt-tests `src/oslat/oslat.c`,
//! `measure_counter_mhz`), each monotonic read bracketed by two TSC reads. Ticks become ns by a
//! 32.32 fixed-point multiply in 128-bit arithmetic, so the hot loop has no division and no float.

use pinlat::agentcfg::ClockChoice;
use pinlat::wire::{ClockInfo, ClockSource};

/// How long the TSC is calibrated against `CLOCK_MONOTONIC`, ns.
pub const CALIBRATION_NS: u64 = 200_000_000;
/// `Auto` falls back to `CLOCK_MONOTONIC` when two calibrations differ by more than this, ppm.
pub const MAX_CALIBRATION_SPREAD_PPM: u64 = 5_000;

/// `CLOCK_MONOTONIC` now, ns.
#[inline(always)]
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux, so the
    // call cannot fail and `ts` is filled in.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The time-stamp counter now, ticks.
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[allow(unused_unsafe)]
    // SAFETY: `rdtsc` has no preconditions on x86-64 (it only reads the counter).
    unsafe {
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

/// The chosen clock and its tick → ns conversion.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// What the results say about the clock.
    pub info: ClockInfo,
    /// ns per tick, 32.32 fixed point.
    ns_per_tick_fp: u64,
    /// ticks per ns, 32.32 fixed point.
    ticks_per_ns_fp: u64,
}

impl Clock {
    /// `CLOCK_MONOTONIC`: one tick is one ns.
    pub fn monotonic(invariant_tsc: bool) -> Self {
        Clock {
            info: ClockInfo {
                source: ClockSource::Monotonic,
                tsc_hz: None,
                invariant_tsc,
            },
            ns_per_tick_fp: 1 << 32,
            ticks_per_ns_fp: 1 << 32,
        }
    }

    /// The TSC at `hz`.
    pub fn tsc(hz: u64, invariant_tsc: bool) -> Self {
        let hz = hz.max(1);
        Clock {
            info: ClockInfo {
                source: ClockSource::Tsc,
                tsc_hz: Some(hz),
                invariant_tsc,
            },
            ns_per_tick_fp: ((1_000_000_000u128 << 32) / hz as u128) as u64,
            ticks_per_ns_fp: (((hz as u128) << 32) / 1_000_000_000) as u64,
        }
    }

    /// Pick the clock for `choice`, calibrating the TSC if it is used.
    ///
    /// `Auto` takes the TSC, as oslat always does, unless two back-to-back calibrations
    /// disagree by more than [`MAX_CALIBRATION_SPREAD_PPM`] (a TSC whose rate changes is no
    /// clock). TCG guests, for one, hide the invariant bit and use an emulated HPET clocksource
    /// costing microseconds per read, yet their TSC runs at the host's constant rate.
    pub fn choose(choice: ClockChoice) -> Self {
        let invariant = invariant_tsc();
        match choice {
            ClockChoice::Monotonic => Clock::monotonic(invariant),
            ClockChoice::Tsc => Clock::tsc(calibrate_tsc_hz(CALIBRATION_NS), invariant),
            ClockChoice::Auto => {
                let a = calibrate_tsc_hz(CALIBRATION_NS / 2);
                let b = calibrate_tsc_hz(CALIBRATION_NS / 2);
                let spread_ppm = a.abs_diff(b) as u128 * 1_000_000 / a.max(1) as u128;
                if spread_ppm <= MAX_CALIBRATION_SPREAD_PPM as u128 {
                    Clock::tsc(a / 2 + b / 2, invariant)
                } else {
                    Clock::monotonic(invariant)
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

/// Measure the TSC frequency against `CLOCK_MONOTONIC` over about `window_ns`, Hz.
pub fn calibrate_tsc_hz(window_ns: u64) -> u64 {
    let sample = || {
        let a = rdtsc();
        let m = mono_ns();
        let b = rdtsc();
        (a / 2 + b / 2, m)
    };
    let (t0, m0) = sample();
    std::thread::sleep(std::time::Duration::from_nanos(window_ns));
    let (t1, m1) = sample();
    let dm = (m1 - m0).max(1);
    ((t1.wrapping_sub(t0)) as u128 * 1_000_000_000 / dm as u128) as u64
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
    fn calibration_agrees_with_itself() {
        let a = calibrate_tsc_hz(50_000_000);
        let b = calibrate_tsc_hz(50_000_000);
        assert!(a > 100_000_000, "TSC at {a} Hz");
        // Two calibrations agree within 1 % even on a noisy machine.
        assert!(a.abs_diff(b) * 100 < a, "{a} vs {b}");
    }
}
