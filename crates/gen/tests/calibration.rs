//! The hidden health process meets its calibration goals at district scale: an annual default rate of
//! 1–3 % among borrowers and an oracle AUC (hidden 12-month PD against realised defaults) of 0.80–0.90.

#[test]
fn district_truth_is_calibrated() {
    let cfg = xinyong_gen::GenConfig::district(20151231);
    let world = xinyong_gen::world::World::build(&cfg);
    let st = xinyong_gen::truth::stats(&world);
    assert!(st.borrower_years > 40_000, "{st:?}");
    assert!(
        (0.01..=0.03).contains(&st.annual_default_rate),
        "annual default rate {:.4}",
        st.annual_default_rate
    );
    assert!(
        (0.80..=0.90).contains(&st.oracle_auc),
        "oracle AUC {:.4}",
        st.oracle_auc
    );
}

#[test]
fn auc_is_exact_on_hand_worked_cases() {
    use xinyong_gen::truth::auc;
    assert_eq!(auc(&[0.1, 0.2, 0.3, 0.4], &[false, false, true, true]), 1.0);
    assert_eq!(auc(&[0.4, 0.3, 0.2, 0.1], &[false, false, true, true]), 0.0);
    assert_eq!(auc(&[0.5, 0.5, 0.5, 0.5], &[false, true, false, true]), 0.5);
    // One positive ranked between two negatives: it beats one of two.
    assert_eq!(auc(&[0.1, 0.2, 0.3], &[false, true, false]), 0.5);
}
