//! X-report (mid-day, changes nothing) and Z-report (day close): per-currency totals over the
//! journal rows since the last close, and the chain hash at the close, stored and journaled so an
//! auditor can check that nothing before it changed. Printable at 40 columns; exportable.

pub use crate::store::reports::{
    AttemptOutcomes, CurrencyTotals, DayClose, DayReport, ReportKind, Tally,
};

use crate::money::{Currency, Money};

/// Width of the report as a file or on screen; printed, it takes the printer's width.
pub const WIDTH: usize = 40;
/// Narrowest width the report's lines fit (a 58 mm printer has 32 columns).
const MIN_WIDTH: usize = 32;

fn money(amount: i64, currency: &str) -> String {
    match currency.parse::<Currency>() {
        Ok(c) => Money::new(amount, c).decimal(),
        Err(_) => amount.to_string(),
    }
}

/// One line: label on the left, count and amount right-aligned, never wider than `width`.
fn line(out: &mut String, width: usize, label: &str, count: Option<i64>, amount: &str) {
    let right = match count {
        Some(n) => format!("{n:>5} {amount:>14}"),
        None => format!("{amount:>20}"),
    };
    let room = width.saturating_sub(right.chars().count() + 1);
    let label: String = label.chars().take(room).collect();
    out.push_str(&format!("{label:<room$} {right}\n"));
}

impl DayReport {
    /// The report as plain text, 40 columns (files, the screen).
    pub fn to_text(&self) -> String {
        self.to_text_width(WIDTH)
    }

    /// The report as plain text `width` columns wide (at least 32): a receipt printer's width.
    pub fn to_text_width(&self, width: usize) -> String {
        self.to_text_in(width, &|en| en.to_owned())
    }

    /// As `to_text_width`, with every label put through `say` (English in, the till's language
    /// out: the screen passes `kassa_ui::words::tr`). Figures, ids and hashes stay as they are.
    pub fn to_text_in(&self, width: usize, say: &dyn Fn(&str) -> String) -> String {
        let width = width.max(MIN_WIDTH);
        let line = |out: &mut String, label: &str, count: Option<i64>, amount: &str| {
            line(out, width, label, count, amount)
        };
        let mut out = String::new();
        let rule = |c: char| std::iter::repeat_n(c, width).collect::<String>() + "\n";
        let title = match (self.kind, self.close_no) {
            (ReportKind::Z, Some(n)) => format!("{} #{n}", say("Z-REPORT (DAY CLOSE)")),
            (ReportKind::Z, None) => say("Z-REPORT (DAY CLOSE)"),
            (ReportKind::X, _) => say("X-REPORT (NOT A CLOSE)"),
        };
        out.push_str(&rule('='));
        out.push_str(&format!("{title:^width$}\n"));
        out.push_str(&rule('='));
        line(&mut out, &say("Terminal"), None, &self.terminal_id);
        line(
            &mut out,
            &say("Made"),
            None,
            &self.made_at.chars().take(19).collect::<String>(),
        );
        if let (Some(f), Some(t)) = (&self.period_from, &self.period_to) {
            line(
                &mut out,
                &say("From"),
                None,
                &f.chars().take(19).collect::<String>(),
            );
            line(
                &mut out,
                &say("To"),
                None,
                &t.chars().take(19).collect::<String>(),
            );
        }
        line(
            &mut out,
            &say("Journal rows"),
            None,
            &format!("{}..{}", self.first_seq, self.last_seq),
        );
        out.push_str(&format!("{}:\n", say("Chain head")));
        // Two halves of 32, indented where the paper has room: easy to read out and compare.
        let indent = if width >= 34 { "  " } else { "" };
        for chunk in self.chain_head.as_bytes().chunks(32) {
            out.push_str(&format!("{indent}{}\n", String::from_utf8_lossy(chunk)));
        }
        if self.currencies.is_empty() {
            out.push_str(&rule('-'));
            out.push_str(&format!("{}\n", say("No sales in this period.")));
        }
        for c in &self.currencies {
            let m = |t: &Tally| money(t.amount, &c.currency);
            out.push_str(&rule('-'));
            out.push_str(&format!(
                "{:<w$}{:>8}\n",
                c.currency,
                say("count"),
                w = width - 8
            ));
            line(&mut out, &say("Sales"), Some(c.sales.count), &m(&c.sales));
            line(
                &mut out,
                &say("Returns"),
                Some(c.returns.count),
                &m(&c.returns),
            );
            line(
                &mut out,
                &say("Refunds sent"),
                Some(c.refunds_sent.count),
                &m(&c.refunds_sent),
            );
            line(
                &mut out,
                &say("Refunds pending"),
                Some(c.refunds_pending.count),
                &m(&c.refunds_pending),
            );
            let tn = &c.tenders;
            out.push_str(&format!("{}\n", say("Paid by")));
            for (label, t) in [
                ("Klarna", &tn.klarna),
                ("cash", &tn.cash),
                ("card terminal", &tn.card_terminal),
            ] {
                line(&mut out, &format!("  {}", say(label)), Some(t.count), &m(t));
            }
            out.push_str(&format!("{}\n", say("Refunded by")));
            line(
                &mut out,
                &format!("  {}", say("Klarna (sent)")),
                Some(c.refunds_sent.count),
                &m(&c.refunds_sent),
            );
            line(
                &mut out,
                &format!("  {}", say("cash")),
                Some(tn.cash_refunded.count),
                &m(&tn.cash_refunded),
            );
            line(
                &mut out,
                &format!("  {}", say("card terminal")),
                Some(tn.card_terminal_refunded.count),
                &m(&tn.card_terminal_refunded),
            );
            let d = &c.drawer;
            let cash = |a: i64| money(a, &c.currency);
            out.push_str(&format!("{}\n", say("Cash drawer")));
            for (label, a) in [
                ("float", d.float),
                ("paid in", d.paid_in),
                ("paid out", -d.paid_out),
                ("cash sales", d.cash_sales),
                ("cash returned", -d.cash_returned),
                ("(of which rounding)", d.rounding),
                ("expected", d.expected),
            ] {
                line(&mut out, &format!("  {}", say(label)), None, &cash(a));
            }
            if let (Some(counted), Some(diff)) = (d.counted, d.difference) {
                line(
                    &mut out,
                    &format!("  {}", say("counted")),
                    None,
                    &cash(counted),
                );
                line(
                    &mut out,
                    &format!("  {}", say("difference")),
                    None,
                    &cash(diff),
                );
            }
            out.push_str(&format!("{}\n", say("Payments by outcome")));
            let a = &c.attempts;
            for (label, t) in [
                ("paid", &a.paid),
                ("declined", &a.declined),
                ("expired", &a.expired),
                ("canceled", &a.canceled),
                ("failed", &a.failed),
                ("approved after abandon", &a.completed_after_abandon),
            ] {
                line(&mut out, &format!("  {}", say(label)), Some(t.count), &m(t));
            }
            line(
                &mut out,
                &say("Sales opened"),
                None,
                &c.sales_opened.to_string(),
            );
            line(
                &mut out,
                &say("Sales abandoned"),
                None,
                &c.sales_abandoned.to_string(),
            );
        }
        out.push_str(&rule('='));
        out
    }
}

#[cfg(test)]
mod tests;
