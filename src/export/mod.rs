//! Views of a [`Plan`](crate::plan::Plan) for people and for deployment tools: a table for
//! `pinlat check`, JSON, libvirt `<cputune>` (alone or in a whole `<domain>`) and nova flavor
//! extra specs + `nova.conf`.
//! One format per file; all of them read the same plan, none keeps state of its own.

pub mod libvirt;
pub mod libvirt_knobs;
pub mod nova;
mod nova_knobs;
pub mod table;

use crate::config::variant::Variant;
use crate::config::Config;
use crate::plan::Plan;

/// The formats `pinlat plan --format` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanFormat {
    /// The resolved placement as JSON (the `plan` of the runner's `plan.json`).
    Json,
    /// libvirt domain XML `<vcpu>`, `<iothreads>` and `<cputune>`, one per guest and layout.
    Libvirt,
    /// A whole libvirt `<domain>` per guest and layout, without a boot device.
    LibvirtDomain,
    /// nova flavor extra specs and `nova.conf` lines, one block per layout.
    Nova,
    /// The readable table `pinlat check` prints.
    Table,
}

impl PlanFormat {
    /// Every format: its name on the command line, and what it gives.
    pub const ALL: [(PlanFormat, &'static str, &'static str); 5] = [
        (
            PlanFormat::Json,
            "json",
            "the resolved placement as JSON (the plan of plan.json)",
        ),
        (
            PlanFormat::Libvirt,
            "libvirt",
            "libvirt domain XML <vcpu>, <iothreads>, <cputune> (vcpupin, emulatorpin, iothreadpin, vcpusched) per guest",
        ),
        (
            PlanFormat::LibvirtDomain,
            "libvirt-domain",
            "a whole libvirt <domain> per guest and layout (add a disk or <kernel> to boot it)",
        ),
        (
            PlanFormat::Nova,
            "nova",
            "nova flavor extra specs and nova.conf lines; says what nova cannot express",
        ),
        (
            PlanFormat::Table,
            "table",
            "the table `pinlat check` prints",
        ),
    ];
}

impl std::str::FromStr for PlanFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .find(|(_, name, _)| *name == s)
            .map(|(f, _, _)| *f)
            .ok_or_else(|| {
                format!("unknown format '{s}': use json, libvirt, libvirt-domain, nova or table")
            })
    }
}

/// Renders `plan` (made from `config`) in `format`.
pub fn render(format: PlanFormat, plan: &Plan, config: &Config) -> String {
    render_variant(format, plan, config, None)
}

impl PlanFormat {
    /// Whether the format says a variant's QEMU knobs (`pinlat plan --variant`): the libvirt
    /// and nova exports do; JSON and the table show the placement alone.
    pub fn follows_variant(self) -> bool {
        matches!(
            self,
            PlanFormat::Libvirt | PlanFormat::LibvirtDomain | PlanFormat::Nova
        )
    }
}

/// Renders `plan` (made from `config`) in `format`, with `variant`'s QEMU knobs in the
/// formats that [follow a variant](PlanFormat::follows_variant).
pub fn render_variant(
    format: PlanFormat,
    plan: &Plan,
    config: &Config,
    variant: Option<&Variant>,
) -> String {
    match format {
        PlanFormat::Json => {
            let mut s = serde_json::to_string_pretty(plan).expect("a plan always serializes");
            s.push('\n');
            s
        }
        PlanFormat::Libvirt => libvirt::render(plan, config, variant),
        PlanFormat::LibvirtDomain => libvirt::render_domains(plan, config, variant),
        PlanFormat::Nova => nova::render(plan, config, variant),
        PlanFormat::Table => table::render(plan, config),
    }
}
