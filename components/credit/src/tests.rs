//! Native tests of recording, withdrawal and the scoring formula.

use proptest::prelude::*;
use zhongtai_guest::testing::{FakePlatform, MemoryStore};

use crate::model::*;
use crate::service::Credit;

const CITIZEN: &str = "11010519491231002X";
const COMPANY: &str = "91350100M000100Y43";
/// 2023-11-14, the day of `FakePlatform::new`.
const TODAY: &str = "2023-11-14";

fn event(subject: &str, category: Category, severity: Severity, on: &str) -> NewEvent {
    NewEvent {
        subject_id: subject.into(),
        category,
        severity,
        occurred_on: on.into(),
        legal_basis: "Tax Collection Administration Law, art. 32".into(),
        description: String::new(),
    }
}

#[test]
fn a_subject_without_events_scores_800_level_b() {
    let (store, env) = (MemoryStore::default(), FakePlatform::new("taxation"));
    let credit = Credit::new(&store, &env);
    let evaluation = credit.evaluate(CITIZEN).unwrap();
    assert_eq!(
        (
            evaluation.score,
            evaluation.level,
            evaluation.serious_dishonesty
        ),
        (800, Level::B, false)
    );
}

#[test]
fn the_formula_decays_with_age() {
    let (store, env) = (
        MemoryStore::default(),
        FakePlatform::new("market-regulation"),
    );
    let credit = Credit::new(&store, &env);
    // Today: -60 × 2 = -120 → 680, level C.
    credit
        .add_event(event(
            COMPANY,
            Category::AdministrativePenalty,
            Severity::Moderate,
            TODAY,
        ))
        .unwrap();
    assert_eq!(credit.evaluate(COMPANY).unwrap().score, 680);
    // 730 days later the same penalty weighs half: -60 → 740, level B.
    env.advance(730 * 86_400);
    let later = credit.evaluate(COMPANY).unwrap();
    assert_eq!((later.score, later.level), (740, Level::B));
    // Past five years it no longer counts.
    env.advance(1_100 * 86_400);
    let much_later = credit.evaluate(COMPANY).unwrap();
    assert_eq!((much_later.score, much_later.active_events), (800, 0));
}

#[test]
fn serious_court_enforcement_puts_a_subject_on_the_list() {
    let (store, env) = (MemoryStore::default(), FakePlatform::new("court"));
    let credit = Credit::new(&store, &env);
    for _ in 0..5 {
        credit
            .add_event(event(
                CITIZEN,
                Category::Commendation,
                Severity::Severe,
                TODAY,
            ))
            .unwrap();
    }
    credit
        .add_event(event(
            CITIZEN,
            Category::CourtEnforcement,
            Severity::Serious,
            "2023-01-01",
        ))
        .unwrap();
    let evaluation = credit.evaluate(CITIZEN).unwrap();
    assert!(evaluation.serious_dishonesty);
    assert_eq!(
        evaluation.level,
        Level::D,
        "on the list means D whatever the score ({})",
        evaluation.score
    );
}

#[test]
fn only_the_issuing_department_withdraws_and_the_reason_is_kept() {
    let (store, env) = (MemoryStore::default(), FakePlatform::new("taxation"));
    let credit = Credit::new(&store, &env);
    let recorded = credit
        .add_event(event(
            CITIZEN,
            Category::TaxArrears,
            Severity::Severe,
            TODAY,
        ))
        .unwrap();
    assert_eq!(recorded.issuing_department, "taxation");
    assert!(credit.evaluate(CITIZEN).unwrap().serious_dishonesty);
    env.call_as("market-regulation");
    assert!(matches!(
        credit.withdraw(&recorded.id, "paid in full"),
        Err(CreditError::Forbidden(_))
    ));
    env.call_as("taxation");
    let withdrawn = credit.withdraw(&recorded.id, "paid in full").unwrap();
    assert_eq!(withdrawn.withdrawn.as_ref().unwrap().reason, "paid in full");
    assert_eq!(
        credit.withdraw(&recorded.id, "again"),
        Err(CreditError::AlreadyWithdrawn)
    );
    assert_eq!(credit.evaluate(CITIZEN).unwrap().score, 800);
    assert!(credit.list_events(CITIZEN, false).unwrap().is_empty());
    assert_eq!(credit.list_events(CITIZEN, true).unwrap(), vec![withdrawn]);
}

#[test]
fn bad_input_is_refused_precisely() {
    let (store, env) = (MemoryStore::default(), FakePlatform::new("taxation"));
    let credit = Credit::new(&store, &env);
    let refuse = |e: NewEvent| credit.add_event(e).unwrap_err();
    assert!(matches!(
        refuse(event("123", Category::OnTimeTax, Severity::Minor, TODAY)),
        CreditError::InvalidIdentifier(_)
    ));
    assert!(matches!(
        refuse(event(
            CITIZEN,
            Category::OnTimeTax,
            Severity::Minor,
            "2023-02-30"
        )),
        CreditError::InvalidDate(_)
    ));
    assert!(
        matches!(refuse(event(CITIZEN, Category::OnTimeTax, Severity::Minor, "2023-11-15")), CreditError::InvalidDate(m) if m.contains("future"))
    );
    let mut no_basis = event(CITIZEN, Category::OnTimeTax, Severity::Minor, TODAY);
    no_basis.legal_basis = " ".into();
    assert!(matches!(refuse(no_basis), CreditError::InvalidInput(_)));
    assert_eq!(
        credit.withdraw("CE00000000000000000042", "x"),
        Err(CreditError::UnknownEvent)
    );
}

fn any_event() -> impl Strategy<Value = (Category, Severity, u32)> {
    (
        prop_oneof![
            Just(Category::Commendation),
            Just(Category::OnTimeTax),
            Just(Category::AdministrativePenalty),
            Just(Category::CourtEnforcement),
            Just(Category::TaxArrears),
        ],
        prop_oneof![
            Just(Severity::Minor),
            Just(Severity::Moderate),
            Just(Severity::Serious),
            Just(Severity::Severe)
        ],
        0u32..3000,
    )
}

proptest! {
    #[test]
    fn scores_stay_in_range_and_withdrawn_events_weigh_nothing(
        events in proptest::collection::vec(any_event(), 0..30),
        extra in any_event(),
    ) {
        let (store, env) = (MemoryStore::default(), FakePlatform::new("taxation"));
        let credit = Credit::new(&store, &env);
        let date = |days_ago: u32| zhongtai_ids::iso_date_of(1_700_000_000 - u64::from(days_ago) * 86_400);
        for (category, severity, days_ago) in events {
            credit.add_event(event(CITIZEN, category, severity, &date(days_ago))).unwrap();
        }
        let before = credit.evaluate(CITIZEN).unwrap();
        prop_assert!(before.score <= 1000);
        let (category, severity, days_ago) = extra;
        let added = credit.add_event(event(CITIZEN, category, severity, &date(days_ago))).unwrap();
        credit.withdraw(&added.id, "recorded in error").unwrap();
        let after = credit.evaluate(CITIZEN).unwrap();
        prop_assert_eq!((after.score, after.level, after.serious_dishonesty), (before.score, before.level, before.serious_dishonesty));
    }
}
