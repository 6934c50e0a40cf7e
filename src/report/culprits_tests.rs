use super::*;

#[test]
fn smi_is_never_zero_when_unknown() {
    let s = smi_text(&[
        SmiCount::NotAvailable {
            cpu: 1,
            why: "no msr".into(),
        },
        SmiCount::Counted {
            cpu: 2,
            before: 5,
            after: 7,
        },
    ]);
    assert_eq!(s, "pCPU 1: not available (no msr); pCPU 2: 2");
    assert_eq!(markdown(&[]), "");
    assert_eq!(html(&[]).unwrap(), "");
}
