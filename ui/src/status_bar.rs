//! The status bar's model: Klarna's health, operations waiting to be sent, device problems and an
//! upcoming maintenance window. The defaults say "all well" until the agent reports otherwise.

/// Can the till take Klarna payments right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KlarnaHealth {
    #[default]
    Online,
    /// Answers are slow or some calls fail; payments may take longer.
    Degraded,
    Offline,
}

/// What the status bar shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatusBarModel {
    pub klarna: KlarnaHealth,
    /// Refunds, captures and the like waiting in the outbox to reach Klarna.
    pub pending_operations: u32,
    /// Operations Klarna refused for good: a manager must retry or dismiss them.
    pub operations_need_attention: u32,
    /// Each problem as the device reports it ("Printer: out of paper").
    pub device_problems: Vec<String>,
    /// When the next maintenance window starts, already as text for the till's language.
    pub maintenance_window: Option<String>,
}

impl StatusBarModel {
    /// The device problems as one line; "" when every device is fine.
    pub fn device_problems_text(&self) -> String {
        self.device_problems.join(" · ")
    }

    /// The agent failed to reach Klarna: the bar says offline until a call gets through.
    pub fn klarna_unreachable(&mut self) {
        self.klarna = KlarnaHealth::Offline;
    }

    /// A call to Klarna got through.
    pub fn klarna_reached(&mut self) {
        if self.klarna == KlarnaHealth::Offline {
            self.klarna = KlarnaHealth::Online;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_till_reports_all_well() {
        let bar = StatusBarModel::default();
        assert_eq!(bar.klarna, KlarnaHealth::Online);
        assert_eq!(bar.pending_operations, 0);
        assert_eq!(bar.device_problems_text(), "");
        assert_eq!(bar.maintenance_window, None);
    }

    #[test]
    fn klarna_goes_offline_and_comes_back() {
        let mut bar = StatusBarModel::default();
        bar.klarna_unreachable();
        assert_eq!(bar.klarna, KlarnaHealth::Offline);
        bar.klarna_reached();
        assert_eq!(bar.klarna, KlarnaHealth::Online);
        bar.klarna = KlarnaHealth::Degraded;
        bar.klarna_reached();
        assert_eq!(
            bar.klarna,
            KlarnaHealth::Degraded,
            "only health checks clear degraded"
        );
    }

    #[test]
    fn several_device_problems_share_one_line() {
        let bar = StatusBarModel {
            device_problems: vec!["Printer: out of paper".into(), "Display: not found".into()],
            ..Default::default()
        };
        assert_eq!(
            bar.device_problems_text(),
            "Printer: out of paper · Display: not found"
        );
    }
}
