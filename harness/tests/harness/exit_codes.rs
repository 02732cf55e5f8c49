//! contracts.md: when several exit codes apply the highest wins, except that 3 (inconclusive)
//! never hides 1 (regression) or 2 (correctness).

use claimbench::error::Exit::*;

#[test]
fn highest_wins_but_inconclusive_never_hides() {
    assert_eq!(Ok.combine(Input), Input);
    assert_eq!(Regression.combine(Correctness), Correctness);
    assert_eq!(Inconclusive.combine(Regression), Regression);
    assert_eq!(Correctness.combine(Inconclusive), Correctness);
    assert_eq!(Ok.combine(Inconclusive), Inconclusive);
    assert_eq!(Input.combine(Inconclusive), Input);
}
