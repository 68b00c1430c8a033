//! The decisions about Klarna's answers, as one table: the attempt's state, the call, what came
//! before, the answer, and where the attempt must end up (or that the same key is asked again).

use super::*;
use crate::klarna_answer::StepUp;
use crate::payment::AttemptState as S;

/// Where an answer must leave the attempt.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    /// Moved to this state; the cashier told `tell` (first send only).
    To(S, Option<&'static str>),
    /// Unchanged; the same key asked again.
    Ask(Again),
}

fn step_up(id: Option<&str>, url: Option<&str>) -> Answer {
    Answer::Read(AuthorizeOutcome::StepUp(StepUp {
        request_id: id.map(Into::into),
        url: url.map(Into::into),
        expires_at: Some("2026-12-07T12:00:00Z".into()),
    }))
}
fn approved() -> Answer {
    Answer::Read(AuthorizeOutcome::Approved {
        transaction_id: "krn:payment:eu1:transaction:1".into(),
    })
}
fn declined() -> Answer {
    Answer::Read(AuthorizeOutcome::Declined { reason: None })
}
fn garbled(may: bool) -> Answer {
    Answer::Read(AuthorizeOutcome::Unplaceable {
        why: "the answer is not JSON".into(),
        money_may_have_moved: may,
    })
}
fn refused() -> Answer {
    Answer::Failed(Failure::Refused {
        code: "INVALID_REQUEST".into(),
        message: "bad".into(),
    })
}
fn unreachable() -> Answer {
    Answer::Failed(Failure::Unreachable("connection refused".into()))
}
fn lost() -> Answer {
    Answer::Failed(Failure::Unknown("502".into()))
}
fn throttled() -> Answer {
    Answer::Failed(Failure::Throttled {
        retry_after: Duration::from_secs(7),
    })
}

/// Decides, applies the event to the state machine, and compares with `expected`.
fn check(state: S, call: Call, unplaceable_before: u32, answer: Answer, expected: Expect) {
    let what = format!("{state:?} {call:?} after {unplaceable_before} unplaceable, {answer:?}");
    // The earlier answers in these rows are garbled ones, which may have charged.
    let d = authorize(
        call,
        Earlier {
            unplaceable: unplaceable_before,
            maybe_charged: unplaceable_before > 0,
        },
        answer,
    );
    let got = match &d.act {
        Act::AskAgain(a) => Expect::Ask(*a),
        Act::Move { event, tell, .. } => {
            let to = state
                .next(*event)
                .unwrap_or_else(|e| panic!("{what}: the decision is not a transition: {e}"));
            Expect::To(
                to,
                tell.as_ref().map(|t| match t {
                    Tell::Unavailable(_) => "unavailable",
                    Tell::Refused { .. } => "refused",
                }),
            )
        }
    };
    assert_eq!(got, expected, "{what}");
    // The count of unplaceable answers ends whenever the attempt moves, and only grows on them.
    match (&d.act, d.count) {
        (Act::Move { .. }, c) => assert_eq!(c, Count::Forget, "{what}"),
        (Act::AskAgain(Again::Pause), c) => {
            assert!(matches!(c, Count::Add { .. }), "{what}: {c:?}")
        }
        (Act::AskAgain(_), c) => assert_eq!(c, Count::Keep, "{what}"),
    }
}

#[test]
fn every_answer_to_an_authorization_lands_where_the_money_is() {
    use Call::*;
    use Expect::*;
    let rid = Some("krn:payment:eu1:payment-request:1");
    let url = Some("https://pay.klarna.com/r/1");
    let table: Vec<(S, Call, u32, Answer, Expect)> = vec![
        // The first send, the cashier waiting.
        (
            S::Requested,
            First,
            0,
            step_up(rid, url),
            To(S::AwaitingCustomer, None),
        ),
        (S::Requested, First, 0, approved(), To(S::Paid, None)),
        (S::Requested, First, 0, declined(), To(S::Declined, None)),
        (
            S::Requested,
            First,
            0,
            refused(),
            To(S::Failed, Some("refused")),
        ),
        (
            S::Requested,
            First,
            0,
            unreachable(),
            To(S::Failed, Some("unavailable")),
        ),
        // A lost answer is asked for again: never a failure, never a decline.
        (S::Requested, First, 0, lost(), Ask(Again::BackOff)),
        (
            S::Requested,
            First,
            0,
            throttled(),
            Ask(Again::After(Duration::from_secs(7))),
        ),
        // A step-up kassa cannot use fails; one without a URL must still be canceled at Klarna.
        (
            S::Requested,
            First,
            0,
            step_up(None, url),
            To(S::Failed, None),
        ),
        (
            S::Requested,
            First,
            0,
            step_up(rid, None),
            To(S::Failed, None),
        ),
        // Garbled answers are asked again, then put to a manager (or failed if nothing moved).
        (S::Requested, First, 0, garbled(true), Ask(Again::Pause)),
        (S::Requested, Retry, 1, garbled(true), Ask(Again::Pause)),
        (S::Requested, Retry, 2, garbled(true), To(S::InDoubt, None)),
        // One that cannot have charged, after two that may have: still a doubt, never a failure.
        (S::Requested, Retry, 2, garbled(false), To(S::InDoubt, None)),
        // After a garbled answer, a refusal or a dropped connection says nothing about it.
        (S::Requested, Retry, 1, refused(), Ask(Again::Pause)),
        (S::Requested, Retry, 2, refused(), To(S::InDoubt, None)),
        (S::Requested, Retry, 1, unreachable(), Ask(Again::BackOff)),
        (S::Requested, First, 1, unreachable(), Ask(Again::BackOff)),
        // The follower's retries of authorize under the same key.
        (S::Requested, Retry, 0, unreachable(), Ask(Again::BackOff)),
        (S::Requested, Retry, 0, refused(), To(S::Failed, None)),
        (S::Requested, Retry, 1, approved(), To(S::Paid, None)),
        (S::Requested, Retry, 1, declined(), To(S::Declined, None)),
        // The final authorization, after the customer approved.
        (S::Completed, Final, 0, approved(), To(S::Paid, None)),
        (S::Completed, Final, 0, declined(), To(S::Declined, None)),
        (S::Completed, Final, 0, refused(), To(S::Failed, None)),
        (S::Completed, Final, 0, unreachable(), Ask(Again::BackOff)),
        (S::Completed, Final, 0, lost(), Ask(Again::BackOff)),
        (
            S::Completed,
            Final,
            0,
            throttled(),
            Ask(Again::After(Duration::from_secs(7))),
        ),
        // A final authorization that steps up, or is garbled, may have charged: always a doubt.
        (S::Completed, Final, 0, step_up(rid, url), Ask(Again::Pause)),
        (
            S::Completed,
            Final,
            2,
            step_up(rid, url),
            To(S::InDoubt, None),
        ),
        (S::Completed, Final, 2, garbled(false), To(S::InDoubt, None)),
        (S::Completed, Final, 1, refused(), Ask(Again::Pause)),
        (S::Completed, Final, 2, refused(), To(S::InDoubt, None)),
        (S::Completed, Final, 2, approved(), To(S::Paid, None)),
    ];
    for (state, call, before, answer, expected) in table {
        check(state, call, before, answer, expected);
    }
}

#[test]
fn an_approval_records_the_transaction_and_a_decline_its_reason() {
    let d = authorize(Call::Final, Earlier::default(), approved());
    let Act::Move { edit, .. } = d.act else {
        panic!("{d:?}")
    };
    assert_eq!(
        edit.transaction_id.as_deref(),
        Some("krn:payment:eu1:transaction:1")
    );
    assert!(edit.settled_at_klarna);
    let d = authorize(Call::First, Earlier::default(), declined());
    let Act::Move { edit, .. } = d.act else {
        panic!("{d:?}")
    };
    assert_eq!(edit.reason.as_deref(), Some("DECLINED"));
    // A request kassa cannot show stays open at Klarna until the follower cancels it.
    let d = authorize(Call::First, Earlier::default(), step_up(Some("r1"), None));
    let Act::Move { edit, follow, .. } = d.act else {
        panic!("{d:?}")
    };
    assert!(follow && !edit.settled_at_klarna);
    assert_eq!(edit.request_id.as_deref(), Some("r1"));
}

#[test]
fn a_doubt_says_how_often_the_answer_could_not_be_read_and_why() {
    let d = authorize(
        Call::Final,
        Earlier {
            unplaceable: 2,
            maybe_charged: true,
        },
        garbled(true),
    );
    let Act::Move { edit, .. } = d.act else {
        panic!("{d:?}")
    };
    let reason = edit.reason.unwrap();
    assert!(reason.contains("3 times"), "{reason}");
    assert!(reason.contains("not JSON"), "{reason}");
    assert!(reason.contains("may have been charged"), "{reason}");
}

#[test]
fn each_request_state_is_one_event_and_only_in_progress_leaves_it_open_at_klarna() {
    use PaymentEvent as E;
    let table = [
        (RequestState::Submitted, None),
        (RequestState::Other("PAUSED".into()), None),
        (RequestState::InProgress, Some((E::CustomerOpened, false))),
        (RequestState::Completed, Some((E::CustomerCompleted, true))),
        (RequestState::Declined, Some((E::CustomerDeclined, true))),
        (RequestState::Expired, Some((E::KlarnaExpired, true))),
        (RequestState::Canceled, Some((E::KlarnaCanceled, true))),
    ];
    for (state, expected) in table {
        assert_eq!(request_state(&state), expected, "{state:?}");
    }
}

#[test]
fn a_missing_session_token_fails_a_fresh_attempt_but_is_a_doubt_after_a_garbled_final() {
    let fresh = no_session_token(Earlier::default());
    assert!(
        matches!(&fresh.act, Act::Move { event: PaymentEvent::Failed, edit, .. } if edit.settled_at_klarna),
        "{fresh:?}"
    );
    assert_eq!(
        no_session_token(Earlier {
            unplaceable: 1,
            maybe_charged: true
        })
        .act,
        Act::AskAgain(Again::Pause)
    );
    let d = no_session_token(Earlier {
        unplaceable: 2,
        maybe_charged: true,
    });
    assert!(
        matches!(
            d.act,
            Act::Move {
                event: PaymentEvent::Unplaceable,
                ..
            }
        ),
        "{d:?}"
    );
}

#[test]
fn the_in_store_timeout_never_lets_go_of_a_payment_that_may_have_been_taken() {
    for state in S::ALL {
        for before in [0, 1] {
            let expected = before == 0
                && matches!(
                    state,
                    S::Requested | S::AwaitingCustomer | S::CustomerOpened
                );
            assert_eq!(
                times_out(
                    state,
                    Earlier {
                        unplaceable: before,
                        maybe_charged: before > 0,
                    }
                ),
                expected,
                "{state:?} after {before} unplaceable"
            );
            if expected {
                // And it is a move the state machine accepts.
                assert_eq!(state.next(PaymentEvent::InStoreTimeout), Ok(S::Expired));
            }
        }
    }
}

#[test]
fn answers_that_cannot_have_charged_fail_the_attempt_only_when_none_could_have() {
    let none = Earlier {
        unplaceable: 2,
        maybe_charged: false,
    };
    let d = authorize(Call::Retry, none, garbled(false));
    assert!(
        matches!(
            d.act,
            Act::Move {
                event: PaymentEvent::Failed,
                ..
            }
        ),
        "{d:?}"
    );
    assert_eq!(
        authorize(Call::Retry, Earlier::default(), garbled(false)).count,
        Count::Add {
            maybe_charged: false
        }
    );
    assert_eq!(
        authorize(Call::Retry, Earlier::default(), garbled(true)).count,
        Count::Add {
            maybe_charged: true
        }
    );
}
