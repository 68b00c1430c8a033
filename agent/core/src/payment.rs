//! The in-store payment attempt as a pure state machine: states, events, and the one function that
//! says which event moves which state where. No I/O here; `terminal` does the talking.

use serde::Serialize;

/// Where one Klarna payment attempt of a sale stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptState {
    /// The authorize call is being made (its idempotency key is already stored).
    Requested,
    /// Klarna issued a payment request; the QR code is on screen.
    AwaitingCustomer,
    /// The customer opened the link on their phone.
    CustomerOpened,
    /// The customer approved; the till is making the final authorization.
    Completed,
    /// Final authorization approved: the sale is paid.
    Paid,
    Declined,
    /// Klarna's request expired, or the till's in-store timeout ran out.
    Expired,
    /// The cashier (or Klarna) canceled the request.
    Canceled,
    /// Klarna refused the request for a reason that needs a person (see `reason`).
    Failed,
    /// Klarna answered a call that can move money in a way kassa cannot place, again and again:
    /// the customer may have been charged. Nothing else may be taken for the sale until a
    /// manager says whether it was paid (with Klarna's transaction id) or not.
    InDoubt,
}

/// Something that happened to an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentEvent {
    /// Authorize answered STEP_UP_REQUIRED with a payment request.
    StepUpRequired,
    /// Authorize answered APPROVED at once (no step-up needed).
    ApprovedAtOnce,
    /// Authorize answered DECLINED.
    AuthorizeDeclined,
    CustomerOpened,
    CustomerCompleted,
    CustomerDeclined,
    KlarnaExpired,
    KlarnaCanceled,
    CashierCanceled,
    InStoreTimeout,
    FinalApproved,
    FinalDeclined,
    /// A final error from Klarna (4xx), or the attempt can no longer succeed.
    Failed,
    /// An authorization (first or final) kept answering in a way kassa cannot place.
    Unplaceable,
    /// A manager found the payment at Klarna (its transaction id checked there).
    ResolvedPaid,
    /// A manager confirmed the customer was not charged.
    ResolvedNotPaid,
}

/// An event that makes no sense in the state it arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("payment event {event:?} is not allowed while the payment is {state:?}")]
pub struct InvalidTransition {
    pub state: AttemptState,
    pub event: PaymentEvent,
}

impl AttemptState {
    pub const ALL: [AttemptState; 10] = [
        AttemptState::Requested,
        AttemptState::AwaitingCustomer,
        AttemptState::CustomerOpened,
        AttemptState::Completed,
        AttemptState::Paid,
        AttemptState::Declined,
        AttemptState::Expired,
        AttemptState::Canceled,
        AttemptState::Failed,
        AttemptState::InDoubt,
    ];

    pub fn is_final(self) -> bool {
        matches!(
            self,
            AttemptState::Paid
                | AttemptState::Declined
                | AttemptState::Expired
                | AttemptState::Canceled
                | AttemptState::Failed
        )
    }

    /// The one transition function: state × event → new state, or the event is refused.
    pub fn next(self, event: PaymentEvent) -> Result<AttemptState, InvalidTransition> {
        use AttemptState as S;
        use PaymentEvent as E;
        let new = match (self, event) {
            (S::Requested, E::StepUpRequired) => S::AwaitingCustomer,
            (S::Requested, E::ApprovedAtOnce) => S::Paid,
            (S::Requested, E::AuthorizeDeclined) => S::Declined,
            // Repeated polls see the same Klarna state again: not a change.
            (S::AwaitingCustomer | S::CustomerOpened, E::CustomerOpened) => S::CustomerOpened,
            (S::AwaitingCustomer | S::CustomerOpened, E::CustomerCompleted) => S::Completed,
            (S::AwaitingCustomer | S::CustomerOpened, E::CustomerDeclined) => S::Declined,
            (S::Requested | S::AwaitingCustomer | S::CustomerOpened, E::KlarnaExpired) => {
                S::Expired
            }
            (S::AwaitingCustomer | S::CustomerOpened, E::KlarnaCanceled) => S::Canceled,
            (S::Requested | S::AwaitingCustomer | S::CustomerOpened, E::CashierCanceled) => {
                S::Canceled
            }
            (S::Requested | S::AwaitingCustomer | S::CustomerOpened, E::InStoreTimeout) => {
                S::Expired
            }
            (S::Completed, E::FinalApproved) => S::Paid,
            (S::Completed, E::FinalDeclined) => S::Declined,
            // Only a call that may have charged the customer can leave them in doubt.
            (S::Requested | S::Completed, E::Unplaceable) => S::InDoubt,
            (S::InDoubt, E::ResolvedPaid) => S::Paid,
            (S::InDoubt, E::ResolvedNotPaid) => S::Failed,
            // In doubt, only a manager's word moves the attempt: nothing Klarna or the till does
            // on its own may read "maybe charged" as "not charged".
            (s, E::Failed) if !s.is_final() && s != S::InDoubt => S::Failed,
            (state, event) => return Err(InvalidTransition { state, event }),
        };
        Ok(new)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptState::Requested => "requested",
            AttemptState::AwaitingCustomer => "awaiting_customer",
            AttemptState::CustomerOpened => "customer_opened",
            AttemptState::Completed => "completed",
            AttemptState::Paid => "paid",
            AttemptState::Declined => "declined",
            AttemptState::Expired => "expired",
            AttemptState::Canceled => "canceled",
            AttemptState::Failed => "failed",
            AttemptState::InDoubt => "in_doubt",
        }
    }

    pub fn parse(s: &str) -> Option<AttemptState> {
        AttemptState::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::AttemptState as S;
    use super::PaymentEvent as E;
    use super::*;

    const EVENTS: [E; 16] = [
        E::StepUpRequired,
        E::ApprovedAtOnce,
        E::AuthorizeDeclined,
        E::CustomerOpened,
        E::CustomerCompleted,
        E::CustomerDeclined,
        E::KlarnaExpired,
        E::KlarnaCanceled,
        E::CashierCanceled,
        E::InStoreTimeout,
        E::FinalApproved,
        E::FinalDeclined,
        E::Failed,
        E::Unplaceable,
        E::ResolvedPaid,
        E::ResolvedNotPaid,
    ];

    /// Every allowed transition, written out by hand; everything else must be refused.
    const ALLOWED: &[(S, E, S)] = &[
        (S::Requested, E::StepUpRequired, S::AwaitingCustomer),
        (S::Requested, E::ApprovedAtOnce, S::Paid),
        (S::Requested, E::AuthorizeDeclined, S::Declined),
        (S::Requested, E::KlarnaExpired, S::Expired),
        (S::Requested, E::CashierCanceled, S::Canceled),
        (S::Requested, E::InStoreTimeout, S::Expired),
        (S::Requested, E::Failed, S::Failed),
        (S::AwaitingCustomer, E::CustomerOpened, S::CustomerOpened),
        (S::AwaitingCustomer, E::CustomerCompleted, S::Completed),
        (S::AwaitingCustomer, E::CustomerDeclined, S::Declined),
        (S::AwaitingCustomer, E::KlarnaExpired, S::Expired),
        (S::AwaitingCustomer, E::KlarnaCanceled, S::Canceled),
        (S::AwaitingCustomer, E::CashierCanceled, S::Canceled),
        (S::AwaitingCustomer, E::InStoreTimeout, S::Expired),
        (S::AwaitingCustomer, E::Failed, S::Failed),
        (S::CustomerOpened, E::CustomerOpened, S::CustomerOpened),
        (S::CustomerOpened, E::CustomerCompleted, S::Completed),
        (S::CustomerOpened, E::CustomerDeclined, S::Declined),
        (S::CustomerOpened, E::KlarnaExpired, S::Expired),
        (S::CustomerOpened, E::KlarnaCanceled, S::Canceled),
        (S::CustomerOpened, E::CashierCanceled, S::Canceled),
        (S::CustomerOpened, E::InStoreTimeout, S::Expired),
        (S::CustomerOpened, E::Failed, S::Failed),
        (S::Completed, E::FinalApproved, S::Paid),
        (S::Completed, E::FinalDeclined, S::Declined),
        (S::Completed, E::Failed, S::Failed),
        (S::Requested, E::Unplaceable, S::InDoubt),
        (S::Completed, E::Unplaceable, S::InDoubt),
        (S::InDoubt, E::ResolvedPaid, S::Paid),
        (S::InDoubt, E::ResolvedNotPaid, S::Failed),
    ];

    #[test]
    fn every_state_and_event_goes_exactly_where_the_table_says() {
        for state in S::ALL {
            for event in EVENTS {
                let expected = ALLOWED
                    .iter()
                    .find(|(s, e, _)| *s == state && *e == event)
                    .map(|(_, _, to)| *to);
                match (state.next(event), expected) {
                    (Ok(got), Some(want)) => assert_eq!(got, want, "{state:?} + {event:?}"),
                    (Err(err), None) => assert_eq!(err, InvalidTransition { state, event }),
                    (got, want) => panic!("{state:?} + {event:?}: got {got:?}, want {want:?}"),
                }
            }
        }
    }

    #[test]
    fn final_states_accept_nothing_so_an_abandoned_sale_is_never_charged() {
        for state in S::ALL.into_iter().filter(|s| s.is_final()) {
            for event in EVENTS {
                assert!(state.next(event).is_err(), "{state:?} accepted {event:?}");
            }
        }
        // In particular: a customer approving after the cashier canceled changes nothing.
        assert!(S::Canceled.next(E::CustomerCompleted).is_err());
    }

    #[test]
    fn a_payment_in_doubt_is_neither_declined_nor_canceled_nor_timed_out_until_a_manager_decides() {
        for e in [
            E::AuthorizeDeclined,
            E::FinalDeclined,
            E::CustomerDeclined,
            E::CashierCanceled,
            E::InStoreTimeout,
            E::KlarnaExpired,
            E::Failed,
        ] {
            assert!(S::InDoubt.next(e).is_err(), "{e:?}");
        }
        assert!(!S::InDoubt.is_final());
    }

    #[test]
    fn a_payment_being_finalized_cannot_be_canceled_by_the_cashier() {
        assert!(S::Completed.next(E::CashierCanceled).is_err());
    }

    #[test]
    fn states_round_trip_through_their_stored_names() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
        }
        assert_eq!(S::parse("bogus"), None);
    }
}
