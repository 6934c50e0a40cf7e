//! Device interrupts landing on RT pCPUs: `/proc/interrupts`, `/proc/irq/N/*affinity_list`,
//! `/proc/irq/default_smp_affinity` and the `irqaffinity=` boot parameter.

use pinlat::cpuset::CpuSet;

use super::{cmdline_value, show, Check, Env};

/// One numbered (device) interrupt line of `/proc/interrupts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IrqLine {
    /// IRQ number.
    pub irq: u32,
    /// Count per CPU column, in column order.
    pub counts: Vec<(u32, u64)>,
    /// Chip, hwirq and device names, as printed.
    pub name: String,
}

/// Parses `/proc/interrupts`: the header names the CPU columns; only numbered lines are device
/// IRQs (LOC, RES, NMI… are per-CPU and not steerable).
pub(crate) fn parse_interrupts(text: &str) -> Vec<IrqLine> {
    let mut lines = text.lines();
    let cpus: Vec<u32> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|c| c.strip_prefix("CPU")?.parse().ok())
        .collect();
    lines
        .filter_map(|l| {
            let (head, rest) = l.split_once(':')?;
            let irq: u32 = head.trim().parse().ok()?;
            let words: Vec<&str> = rest.split_whitespace().collect();
            let counts: Vec<(u32, u64)> = cpus
                .iter()
                .zip(&words)
                .map_while(|(&c, w)| Some((c, w.parse::<u64>().ok()?)))
                .collect();
            let words = words[counts.len()..].iter();
            Some(IrqLine {
                irq,
                counts,
                name: words.copied().collect::<Vec<_>>().join(" "),
            })
        })
        .collect()
}

pub(super) fn checks(env: &Env) -> Vec<Check> {
    vec![device_irqs(env), default_affinity(env)]
}

fn device_irqs(env: &Env) -> Check {
    const ID: &str = "irq.device_affinity";
    let Ok(text) = env.root.read("proc/interrupts") else {
        return Check::skip(ID, "/proc/interrupts not readable");
    };
    if env.rt_cpus.is_empty() {
        return Check::skip(ID, "no RT pCPUs to check");
    }
    let mut routed = Vec::new();
    let mut landed = Vec::new();
    for line in parse_interrupts(&text) {
        let dir = format!("proc/irq/{}", line.irq);
        let aff = env
            .root
            .read_cpus(&format!("{dir}/effective_affinity_list"))
            .filter(|s| !s.is_empty())
            .or_else(|| env.root.read_cpus(&format!("{dir}/smp_affinity_list")));
        let label = format!("{} ({})", line.irq, short_name(&line.name));
        if let Some(aff) = aff {
            if !aff.is_disjoint(&env.rt_cpus) {
                routed.push(format!("{label} -> {aff}"));
                continue;
            }
        }
        let on_rt: u64 = line
            .counts
            .iter()
            .filter(|(c, _)| env.rt_cpus.contains(*c))
            .map(|(_, n)| n)
            .sum();
        if on_rt > 0 {
            landed.push(label);
        }
    }
    let hk = housekeeping(env);
    if !routed.is_empty() {
        Check::fail(
            ID,
            format!(
                "{} device IRQs may run on RT pCPUs {}: {}",
                routed.len(),
                env.rt_cpus,
                abbreviate(&routed)
            ),
            format!(
                "echo {} > /proc/irq/<N>/smp_affinity_list for each (or boot with irqaffinity={}; tuned's isolated_cores does both)",
                show(&hk),
                show(&hk)
            ),
        )
    } else if !landed.is_empty() {
        Check::warn(
            ID,
            format!(
                "no device IRQ is routed to RT pCPUs now, but {} counted interrupts there since boot: {}",
                landed.len(),
                abbreviate(&landed)
            ),
            "check they no longer increase during a run (watch /proc/interrupts); steer them at boot with irqaffinity=",
        )
    } else {
        Check::pass(
            ID,
            format!("no device IRQ routed to RT pCPUs {}", env.rt_cpus),
        )
    }
}

fn default_affinity(env: &Env) -> Check {
    const ID: &str = "irq.default_affinity";
    let online = env
        .root
        .read_cpus("sys/devices/system/cpu/online")
        .unwrap_or_default();
    let cmdline = env.root.read_trim("proc/cmdline").unwrap_or_default();
    let from_cmdline = cmdline_value(&cmdline, "irqaffinity");
    let Some(mask) = env.root.read_trim("proc/irq/default_smp_affinity") else {
        return Check::skip(ID, "/proc/irq/default_smp_affinity not readable");
    };
    let Some(set) = parse_kernel_mask(&mask) else {
        return Check::skip(ID, format!("unparsable default_smp_affinity {mask:?}"));
    };
    let set = set.intersection(&online);
    if env.rt_cpus.is_empty() {
        return Check::skip(ID, "no RT pCPUs to check");
    }
    let on_rt = set.intersection(&env.rt_cpus);
    let param = from_cmdline
        .map(|v| format!("irqaffinity={v}"))
        .unwrap_or_else(|| "no irqaffinity=".into());
    if on_rt.is_empty() {
        Check::pass(ID, format!("new IRQs go to {} ({param})", show(&set)))
    } else {
        let hk = housekeeping(env);
        Check::warn(
            ID,
            format!(
                "new IRQs may go to RT pCPUs {on_rt} (default {}; {param})",
                show(&set)
            ),
            format!("boot with irqaffinity={}", show(&hk)),
        )
    }
}

/// Parses a kernel CPU mask as procfs prints it (`3`, `ffffffff,ffffffff`); all zeros is the
/// empty set.
pub(crate) fn parse_kernel_mask(mask: &str) -> Option<CpuSet> {
    let hex: String = mask.trim().chars().filter(|&c| c != ',').collect();
    if !hex.is_empty() && hex.chars().all(|c| c == '0') {
        return Some(CpuSet::new());
    }
    CpuSet::parse_hex(&format!("0x{hex}")).ok()
}

/// Online CPUs that are not RT pCPUs.
fn housekeeping(env: &Env) -> CpuSet {
    env.root
        .read_cpus("sys/devices/system/cpu/online")
        .unwrap_or_default()
        .difference(&env.rt_cpus)
}

/// The device name: last word of the `/proc/interrupts` description.
fn short_name(name: &str) -> &str {
    name.split_whitespace().last().unwrap_or("?")
}

fn abbreviate(items: &[String]) -> String {
    const MAX: usize = 6;
    let mut s = items
        .iter()
        .take(MAX)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MAX {
        s.push_str(&format!(", … {} more", items.len() - MAX));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbered_lines_and_skips_per_cpu_ones() {
        let t = "           CPU0       CPU1       \n  1:          9          0  IO-APIC   1-edge      i8042\n 24:       1200        345  PCI-MSIX-0000:00:04.0 0-edge virtio0-config\nLOC:     123     456   Local timer interrupts\n";
        let v = parse_interrupts(t);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].irq, 1);
        assert_eq!(v[0].counts, vec![(0, 9), (1, 0)]);
        assert_eq!(short_name(&v[0].name), "i8042");
        assert_eq!(v[1].counts, vec![(0, 1200), (1, 345)]);
        assert_eq!(short_name(&v[1].name), "virtio0-config");
    }

    #[test]
    fn kernel_masks_with_word_commas() {
        assert_eq!(parse_kernel_mask("3").unwrap().to_string(), "0-1");
        assert_eq!(
            parse_kernel_mask("00000000,00000101").unwrap().to_string(),
            "0,8"
        );
        assert!(parse_kernel_mask("0000").unwrap().is_empty());
        assert!(parse_kernel_mask("xyz").is_none());
    }
}
