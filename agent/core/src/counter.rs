//! The sale at the counter: which sale the till's next scan or tap belongs to, and whether a
//! change to some sale is one the counter's screens should show. One rule for every listener
//! (the cashier's screen, the pole display, the scanner), fed the till's sale changes in the
//! order they were written, so the screen and the peripherals never disagree about it.

/// The counter as one listener of the till's ordered sale changes sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counter {
    open: Option<String>,
}

impl Counter {
    /// The open sale at the counter, if any.
    pub fn current(&self) -> Option<&str> {
        self.open.as_deref()
    }

    /// Takes in a change to sale `sale_id` (`open`: it is still open) and says whether it is
    /// the counter's business: a sale opening takes the counter; a sale that closes is shown if
    /// it was the counter's (or the counter was free); a late change to a sale the counter has
    /// moved on from is not (it must not take the screen from the customer there now).
    pub fn observe(&mut self, sale_id: &str, open: bool) -> bool {
        let was = self.open.take();
        let ours = open || was.as_deref().is_none_or(|w| w == sale_id);
        self.open = if open {
            Some(sale_id.to_owned())
        } else if was.as_deref() == Some(sale_id) {
            None
        } else {
            was
        };
        ours
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_follows_the_sale_last_opened_and_frees_when_it_closes() {
        let mut c = Counter::default();
        // (sale, still open, shown at the counter, the counter's sale afterwards)
        let steps = [
            ("s1", true, true, Some("s1")),
            ("s1", true, true, Some("s1")),
            // s1 paid: shown (the customer's thank-you), the counter is free.
            ("s1", false, true, None),
            // A late change to the paid sale, with nothing open: still shown, still free.
            ("s1", false, true, None),
            ("s2", true, true, Some("s2")),
            // A late change to s1 while s2 is at the counter: not shown, s2 keeps the counter.
            ("s1", false, false, Some("s2")),
            // Another door opens s3: it takes the counter.
            ("s3", true, true, Some("s3")),
            ("s2", false, false, Some("s3")),
            ("s3", false, true, None),
        ];
        for (i, (sale, open, shown, after)) in steps.into_iter().enumerate() {
            assert_eq!(c.observe(sale, open), shown, "step {i}: {sale} open={open}");
            assert_eq!(c.current(), after, "step {i}");
        }
    }
}
