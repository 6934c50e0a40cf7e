//! The LAVA case lines: one per group with the budget's verdict and number, one per run
//! without a result, every line two or four fields; a golden file. The definition that reads
//! them, `deploy/lava/pinlat.yaml`, is tested by running it (`host-runner/tests/commands/lava.rs`).

use pinlat::report::ci::lava::{self, LavaResult};
use pinlat::report::us;

use super::written;
use crate::report::golden;

#[test]
fn a_case_per_group_and_per_run_without_result() {
    let (_dir, r) = written("runs-failures");
    let cases = lava::lava_cases(&r);
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "colocated.mgmt-poll.timer",
            "isolate.mgmt-poll.timer",
            "vcpu0.mgmt-poll.timer",
            "colocated.mgmt-poll.timer.r1",
            "colocated.mgmt-poll.timer.r2",
            "vcpu0.mgmt-poll.timer.r2",
        ]
    );
    let isolate = &cases[1];
    let g = &r.groups[1];
    assert_eq!(isolate.result, LavaResult::Pass);
    // The timer budget sets p99.99: the number is the one it judged.
    assert_eq!(isolate.measurement_ns, g.budget.checks[0].observed_ns);
    assert_eq!(
        isolate.line(),
        format!(
            "isolate.mgmt-poll.timer pass {} us",
            us(g.stats.p9999_ns.value_ns.unwrap())
        )
    );
    assert_eq!(
        cases[0].line(),
        "colocated.mgmt-poll.timer fail",
        "nothing measured: no number"
    );
    assert_eq!(
        cases[2].result,
        LavaResult::Fail,
        "a failed run fails its group"
    );
    assert!(
        cases[3].comment.contains("guest kernel panic during boot"),
        "{}",
        cases[3].comment
    );
    for line in lava::render(&r).lines().filter(|l| !l.starts_with('#')) {
        let n = line.split_whitespace().count();
        assert!(n == 2 || n == 4, "{line}");
    }
}

#[test]
fn golden_lava() {
    let (_dir, r) = written("runs-tcg");
    golden("ci/tcg.lava.txt", &lava::render(&r));
}
