//! What each answer from Klarna means for a payment attempt, as pure functions: the till asks
//! here, then records what it is told (one transition, one journal row). Kept apart from the I/O
//! so the rules that keep money from moving twice or silently are read, and tested, in one place:
//! an answer kassa cannot place is asked again with the same key and then put to a manager,
//! never read as a decline; a refusal after such an answer is still a doubt.

use std::time::Duration;

use crate::klarna_answer::{AuthorizeOutcome, RequestState};
use crate::payment::{AttemptState, PaymentEvent};

/// Answers kassa cannot place, under one key, before a payment is put in doubt for a manager.
pub const UNPLACEABLE_TRIES: u32 = 3;

/// Which authorization call answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// The first send of authorize, while the cashier waits for the QR code.
    First,
    /// Authorize sent again under the same key by the attempt's follower.
    Retry,
    /// The final authorization, with the customer's session token.
    Final,
}

/// A call that brought no answer to read, as the Klarna client classified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The request never left the till: nothing happened at Klarna.
    Unreachable(String),
    /// Klarna refused it (4xx, or kassa's credentials): sending it again unchanged cannot help.
    Refused { code: String, message: String },
    /// 429: ask again with the same key after `retry_after`.
    Throttled { retry_after: Duration },
    /// It may or may not have taken effect (5xx, lost answer): ask again with the same key.
    Unknown(String),
}

/// What an authorization call came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Read(AuthorizeOutcome),
    Failed(Failure),
}

/// What the till knows about earlier answers under this attempt's keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Earlier {
    /// Answers that could not be placed so far (see `UNPLACEABLE_TRIES`). Any at all stops the
    /// in-store timeout and turns a later refusal into one more such answer.
    pub unplaceable: u32,
    /// One of them may have charged the customer: however the last one reads, the attempt can
    /// then only end placed or in doubt, never failed (the sale would be payable again).
    pub maybe_charged: bool,
}

/// The changes a transition writes on the attempt besides its state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edit {
    pub request_id: Option<String>,
    pub request_url: Option<String>,
    pub expires_at: Option<String>,
    pub transaction_id: Option<String>,
    pub reason: Option<String>,
    /// Klarna has nothing left open for this attempt (paid, or nothing created there).
    pub settled_at_klarna: bool,
}

/// What the cashier waiting on the first send is told besides the attempt's new state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tell {
    /// Klarna cannot be reached: take another payment method.
    Unavailable(String),
    /// Klarna refused the payment.
    Refused { code: String, message: String },
}

/// When to ask again under the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Again {
    /// At the follower's next poll.
    NextPoll,
    /// After a short pause, so a passing fault at Klarna can clear.
    Pause,
    /// After Klarna's `Retry-After`.
    After(Duration),
    /// After backing off, as for any call that failed.
    BackOff,
}

/// What to do with the count of unplaceable answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Unchanged (the answer says nothing about the earlier ones).
    Keep,
    /// One more answer that could not be placed (`maybe_charged`: it may have charged).
    Add { maybe_charged: bool },
    /// The attempt is placed: the count is over.
    Forget,
}

/// What the till does with an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Move the attempt by `event`, writing `edit` with it. `follow`: Klarna still holds
    /// something for it (a request kassa cannot show) that the follower must cancel.
    Move {
        event: PaymentEvent,
        edit: Edit,
        tell: Option<Tell>,
        follow: bool,
    },
    /// Nothing is recorded: the same key is asked again.
    AskAgain(Again),
}

/// The decision about one answer: what to do, and what it does to the unplaceable count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub act: Act,
    pub count: Count,
}

fn moved(event: PaymentEvent, edit: Edit) -> Act {
    Act::Move {
        event,
        edit,
        tell: None,
        follow: false,
    }
}

fn failed(reason: String) -> Edit {
    Edit {
        reason: Some(reason),
        // A refused or impossible authorization created nothing at Klarna that needs canceling.
        settled_at_klarna: true,
        ..Edit::default()
    }
}

/// An answer kassa cannot place: asked again until `UNPLACEABLE_TRIES`, then in doubt when it may
/// have charged the customer (a manager decides), or failed when it cannot have.
fn unplaceable(earlier: Earlier, why: String, money_may_have_moved: bool) -> Decision {
    let tries = earlier.unplaceable + 1;
    if tries < UNPLACEABLE_TRIES {
        return Decision {
            act: Act::AskAgain(Again::Pause),
            count: Count::Add {
                maybe_charged: money_may_have_moved,
            },
        };
    }
    let act = if money_may_have_moved || earlier.maybe_charged {
        moved(
            PaymentEvent::Unplaceable,
            Edit {
                reason: Some(format!(
                    "Klarna's answer could not be read {tries} times ({why}); the customer may have been charged"
                )),
                ..Edit::default()
            },
        )
    } else {
        moved(PaymentEvent::Failed, failed(why))
    };
    Decision {
        act,
        count: Count::Forget,
    }
}

/// What an authorization's answer means for the attempt.
pub fn authorize(call: Call, earlier: Earlier, answer: Answer) -> Decision {
    let suspect = earlier.unplaceable > 0;
    let placed = |act| Decision {
        act,
        count: Count::Forget,
    };
    let approved = |event, transaction_id| {
        moved(
            event,
            Edit {
                transaction_id: Some(transaction_id),
                settled_at_klarna: true,
                ..Edit::default()
            },
        )
    };
    let declined = |event, reason: Option<String>| {
        moved(
            event,
            Edit {
                reason: Some(reason.unwrap_or_else(|| "DECLINED".into())),
                ..Edit::default()
            },
        )
    };
    let again = |a| Decision {
        act: Act::AskAgain(a),
        count: Count::Keep,
    };
    match (call, answer) {
        (Call::First | Call::Retry, Answer::Read(AuthorizeOutcome::StepUp(up))) => {
            let Some(request_id) = up.request_id else {
                return placed(moved(
                    PaymentEvent::Failed,
                    failed("STEP_UP_REQUIRED without a payment_request_id".into()),
                ));
            };
            let Some(url) = up.url else {
                // Klarna made a request kassa cannot show: it must still be cancelled there.
                return placed(Act::Move {
                    event: PaymentEvent::Failed,
                    edit: Edit {
                        request_id: Some(request_id),
                        reason: Some(
                            "payment request without a payment_request_url \
                             (state_context.customer_interaction.payment_request_url)"
                                .into(),
                        ),
                        ..Edit::default()
                    },
                    tell: None,
                    follow: true,
                });
            };
            placed(moved(
                PaymentEvent::StepUpRequired,
                Edit {
                    request_id: Some(request_id),
                    request_url: Some(url),
                    expires_at: up.expires_at,
                    ..Edit::default()
                },
            ))
        }
        // A final authorization never steps up; an answer that does is one kassa cannot place,
        // like any other: the customer may have been charged.
        (Call::Final, Answer::Read(AuthorizeOutcome::StepUp(_))) => unplaceable(
            earlier,
            "a final authorization answered STEP_UP_REQUIRED".into(),
            true,
        ),
        (
            Call::First | Call::Retry,
            Answer::Read(AuthorizeOutcome::Approved { transaction_id }),
        ) => placed(approved(PaymentEvent::ApprovedAtOnce, transaction_id)),
        (Call::Final, Answer::Read(AuthorizeOutcome::Approved { transaction_id })) => {
            placed(approved(PaymentEvent::FinalApproved, transaction_id))
        }
        (Call::First | Call::Retry, Answer::Read(AuthorizeOutcome::Declined { reason })) => {
            placed(declined(PaymentEvent::AuthorizeDeclined, reason))
        }
        (Call::Final, Answer::Read(AuthorizeOutcome::Declined { reason })) => {
            placed(declined(PaymentEvent::FinalDeclined, reason))
        }
        (
            Call::First | Call::Retry,
            Answer::Read(AuthorizeOutcome::Unplaceable {
                why,
                money_may_have_moved,
            }),
        ) => unplaceable(earlier, why, money_may_have_moved),
        // A final authorization's answer always may have charged.
        (Call::Final, Answer::Read(AuthorizeOutcome::Unplaceable { why, .. })) => {
            unplaceable(earlier, why, true)
        }
        (_, Answer::Failed(Failure::Throttled { retry_after })) => again(Again::After(retry_after)),
        (_, Answer::Failed(Failure::Unknown(_))) => again(Again::BackOff),
        // After an answer that may have charged the customer, an error on a retry says nothing
        // about that first answer: never fail the attempt on it (the sale would be payable
        // again). A connection that failed is simply asked again.
        (Call::Retry | Call::Final, Answer::Failed(Failure::Unreachable(_))) => {
            again(Again::BackOff)
        }
        (Call::First, Answer::Failed(Failure::Unreachable(_))) if suspect => again(Again::BackOff),
        (_, Answer::Failed(Failure::Refused { code, message })) if suspect => unplaceable(
            earlier,
            format!("a retry was refused ({code}: {message})"),
            true,
        ),
        // Nothing reached Klarna: nothing to clean up, and the cashier learns it at once.
        (Call::First, Answer::Failed(Failure::Unreachable(m))) => placed(Act::Move {
            event: PaymentEvent::Failed,
            edit: failed(m.clone()),
            tell: Some(Tell::Unavailable(m)),
            follow: false,
        }),
        (Call::First | Call::Retry, Answer::Failed(Failure::Refused { code, message })) => {
            placed(Act::Move {
                event: PaymentEvent::Failed,
                edit: failed(format!("{code}: {message}")),
                tell: (call == Call::First).then(|| Tell::Refused {
                    code: code.clone(),
                    message: message.clone(),
                }),
                follow: false,
            })
        }
        (Call::Final, Answer::Failed(Failure::Refused { code, message })) => placed(moved(
            PaymentEvent::Failed,
            failed(format!("final authorization refused: {code}: {message}")),
        )),
    }
}

/// A completed payment request came without the session token the final authorization needs.
pub fn no_session_token(earlier: Earlier) -> Decision {
    if earlier.unplaceable > 0 {
        // A final authorization was answered in a way kassa cannot place: it may have charged,
        // so this is a doubt, not a failure.
        return unplaceable(
            earlier,
            "no session token to retry the final authorization with".into(),
            true,
        );
    }
    // Nothing was charged yet (no final authorization is made without a token), so failing
    // cannot hide a payment.
    Decision {
        act: moved(
            PaymentEvent::Failed,
            failed(
                "completed payment request without a session token \
                 (state_context.klarna_network_session_token)"
                    .into(),
            ),
        ),
        count: Count::Forget,
    }
}

/// Whether the in-store timeout ends an attempt past its deadline. Not once the customer
/// approved (the final authorization is under way), and not after an answer that may have
/// charged: that one is asked until it is placed or in doubt, never let go so the sale can be
/// paid again.
pub fn times_out(state: AttemptState, earlier: Earlier) -> bool {
    !state.is_final()
        && !matches!(state, AttemptState::Completed | AttemptState::InDoubt)
        && earlier.unplaceable == 0
}

/// The event a payment request's state is for the attempt (`None`: nothing to record, poll on),
/// and whether Klarna has settled the request (nothing left there to cancel).
pub fn request_state(state: &RequestState) -> Option<(PaymentEvent, bool)> {
    let event = match state {
        RequestState::Submitted | RequestState::Other(_) => return None,
        RequestState::InProgress => PaymentEvent::CustomerOpened,
        RequestState::Completed => PaymentEvent::CustomerCompleted,
        RequestState::Declined => PaymentEvent::CustomerDeclined,
        RequestState::Expired => PaymentEvent::KlarnaExpired,
        RequestState::Canceled => PaymentEvent::KlarnaCanceled,
    };
    Some((event, event != PaymentEvent::CustomerOpened))
}

#[cfg(test)]
mod tests;
