//! Customer pole display (20×2): typed screens built by layout functions, and encoders for the
//! Epson ESC/POS and CD5220 command sets that send only what changed since the last frame.
//! Amounts arrive pre-formatted ("118,00 kr"); layouts keep them whole and shorten names instead.

use serde::Deserialize;

use crate::codepage::{PC858_TABLE, encode_char};

/// Cells per line of the pole display.
pub const COLUMNS: usize = 20;
/// Lines of the pole display.
pub const ROWS: usize = 2;

/// Which command language the display speaks (set in the terminal's TOML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DisplayCommandSet {
    /// Epson ESC/POS customer display commands (`1F 24 x y` cursor moves).
    #[default]
    Epson,
    /// CD5220 command set (`1B 51 41/42` whole-line writes).
    Cd5220,
}

/// Exactly what the customer sees: two lines of exactly 20 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayScreen {
    cells: [[char; COLUMNS]; ROWS],
}

/// Words the layouts put around the caller's amounts; defaults are English, the agent may
/// override them from its configuration for the store's language.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScreenLabels {
    /// Label before the running or final total.
    pub total: String,
    /// First line while the payment QR code is shown on the terminal screen.
    pub scan_to_pay: String,
    /// Label before the amount on the QR screen's second line.
    pub to_pay: String,
    /// First line after a completed sale.
    pub thank_you: String,
    /// Second line after a completed sale.
    pub welcome_back: String,
    /// Idle screen.
    pub welcome: String,
}

impl Default for ScreenLabels {
    fn default() -> Self {
        Self {
            total: "Total".into(),
            scan_to_pay: "Scan the QR code".into(),
            to_pay: "to pay".into(),
            thank_you: "Thank you!".into(),
            welcome_back: "Welcome back".into(),
            welcome: "Welcome".into(),
        }
    }
}

impl Default for DisplayScreen {
    fn default() -> Self {
        Self::blank()
    }
}

impl DisplayScreen {
    /// An empty screen (all spaces).
    pub fn blank() -> Self {
        Self {
            cells: [[' '; COLUMNS]; ROWS],
        }
    }

    /// Two free-text lines, each cut at 20 characters and padded with spaces.
    pub fn text(upper: &str, lower: &str) -> Self {
        let mut screen = Self::blank();
        screen.set_row(0, &fit_left(upper));
        screen.set_row(1, &fit_left(lower));
        screen
    }

    /// The item just scanned with its price on the upper line, the running total below.
    pub fn item(labels: &ScreenLabels, name: &str, price: &str, total: &str) -> Self {
        let mut screen = Self::blank();
        screen.set_row(0, &left_and_amount(name, price));
        screen.set_row(1, &left_and_amount(&labels.total, total));
        screen
    }

    /// The sale's total alone, e.g. while the cashier chooses the payment.
    pub fn total(labels: &ScreenLabels, total: &str) -> Self {
        let mut screen = Self::blank();
        screen.set_row(0, &fit_left(&labels.total));
        screen.set_row(1, &left_and_amount("", total));
        screen
    }

    /// Ask the customer to scan the Klarna QR code shown on the terminal.
    pub fn scan_to_pay(labels: &ScreenLabels, total: &str) -> Self {
        let mut screen = Self::blank();
        screen.set_row(0, &centred(&labels.scan_to_pay));
        screen.set_row(1, &left_and_amount(&labels.to_pay, total));
        screen
    }

    /// After a completed sale.
    pub fn thank_you(labels: &ScreenLabels) -> Self {
        let mut screen = Self::blank();
        screen.set_row(0, &centred(&labels.thank_you));
        screen.set_row(1, &centred(&labels.welcome_back));
        screen
    }

    /// Between sales.
    pub fn welcome(labels: &ScreenLabels) -> Self {
        let mut screen = Self::blank();
        screen.set_row(0, &centred(&labels.welcome));
        screen
    }

    /// The two lines as strings of exactly 20 characters.
    pub fn lines(&self) -> [String; ROWS] {
        [
            self.cells[0].iter().collect(),
            self.cells[1].iter().collect(),
        ]
    }

    fn set_row(&mut self, row: usize, cells: &[char; COLUMNS]) {
        self.cells[row] = *cells;
    }
}

fn fit_left(text: &str) -> [char; COLUMNS] {
    let mut cells = [' '; COLUMNS];
    for (cell, c) in cells.iter_mut().zip(text.chars()) {
        *cell = c;
    }
    cells
}

fn centred(text: &str) -> [char; COLUMNS] {
    let len = text.chars().count().min(COLUMNS);
    let mut cells = [' '; COLUMNS];
    let start = (COLUMNS - len) / 2;
    for (cell, c) in cells[start..].iter_mut().zip(text.chars().take(len)) {
        *cell = c;
    }
    cells
}

/// `label` on the left, `amount` flush right. The amount always wins: the label is shortened to
/// leave one space before it, because a half-shown price is worse than a half-shown name. An amount
/// longer than the line (a caller bug) keeps its first 20 characters.
fn left_and_amount(label: &str, amount: &str) -> [char; COLUMNS] {
    let amount: Vec<char> = amount.chars().take(COLUMNS).collect();
    let mut cells = [' '; COLUMNS];
    let amount_start = COLUMNS - amount.len();
    let label_room = amount_start.saturating_sub(1);
    for (cell, c) in cells[..label_room].iter_mut().zip(label.chars()) {
        *cell = c;
    }
    cells[amount_start..].copy_from_slice(&amount);
    cells
}

/// Turns screens into bytes for one command set, remembering what the display shows so that only
/// changed cells (Epson) or lines (CD5220) are re-sent: a serial VFD at 9600 baud visibly flickers
/// when redrawn whole on every scanned item.
#[derive(Debug, Clone)]
pub struct DisplayEncoder {
    set: DisplayCommandSet,
    /// What the device shows now, or `None` after (re)connection when it is unknown.
    shown: Option<DisplayScreen>,
}

impl DisplayEncoder {
    /// An encoder that knows nothing of the display's contents yet.
    pub fn new(set: DisplayCommandSet) -> Self {
        Self { set, shown: None }
    }

    /// Bytes that reset the display, select PC858 (Epson), hide the cursor and clear it.
    pub fn initialize(&mut self) -> Vec<u8> {
        self.shown = Some(DisplayScreen::blank());
        match self.set {
            DisplayCommandSet::Epson => vec![
                0x1b,
                0x40, // initialize
                0x1b,
                0x74,
                PC858_TABLE, // code table
                0x1f,
                0x01, // overwrite mode: writing the last cell must not scroll
                0x1f,
                0x43,
                0x00, // cursor off
                0x0c, // clear
            ],
            // CD5220 clears on initialize and has no code-table command in our reference.
            DisplayCommandSet::Cd5220 => vec![0x1b, 0x40, 0x1b, 0x5f, 0x00],
        }
    }

    /// Forget what the display shows (after a reconnect), so the next render is complete.
    pub fn forget(&mut self) {
        self.shown = None;
    }

    /// Bytes that change the display from what it shows to `screen`; empty when nothing changed.
    pub fn render(&mut self, screen: &DisplayScreen) -> Vec<u8> {
        let previous = self.shown.take();
        let mut out = Vec::new();
        for row in 0..ROWS {
            let new = &screen.cells[row];
            match self.set {
                DisplayCommandSet::Cd5220 => {
                    if previous.as_ref().is_some_and(|p| &p.cells[row] == new) {
                        continue;
                    }
                    out.extend_from_slice(&[0x1b, 0x51, 0x41 + row as u8]);
                    out.extend(new.iter().map(|&c| encode_char(c)));
                    out.push(0x0d);
                }
                DisplayCommandSet::Epson => {
                    let old = previous.as_ref().map(|p| &p.cells[row]);
                    for (start, end) in changed_runs(old, new) {
                        out.extend_from_slice(&[0x1f, 0x24, start as u8 + 1, row as u8 + 1]);
                        out.extend(new[start..end].iter().map(|&c| encode_char(c)));
                    }
                }
            }
        }
        self.shown = Some(screen.clone());
        out
    }
}

/// Half-open ranges of cells to rewrite. Runs separated by fewer unchanged cells than a cursor
/// move costs (4 bytes) are merged, since rewriting those cells is cheaper than jumping over them.
fn changed_runs(old: Option<&[char; COLUMNS]>, new: &[char; COLUMNS]) -> Vec<(usize, usize)> {
    let Some(old) = old else {
        return vec![(0, COLUMNS)];
    };
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for col in 0..COLUMNS {
        if old[col] == new[col] {
            continue;
        }
        match runs.last_mut() {
            Some((_, end)) if col - *end < 4 => *end = col + 1,
            _ => runs.push((col, col + 1)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> ScreenLabels {
        ScreenLabels::default()
    }

    fn check_lines(screen: DisplayScreen, expected: [&str; 2]) {
        assert_eq!(screen.lines(), expected.map(String::from));
    }

    #[test]
    fn long_item_names_are_shortened_and_the_price_stays_whole() {
        check_lines(
            DisplayScreen::item(
                &labels(),
                "Ekologisk havredryck 1 l",
                "118,00 kr",
                "1 234,50 kr",
            ),
            ["Ekologisk  118,00 kr", "Total    1 234,50 kr"],
        );
    }

    #[test]
    fn layouts_fill_both_lines_to_twenty_cells() {
        check_lines(
            DisplayScreen::total(&labels(), "118,00 kr"),
            ["Total               ", "           118,00 kr"],
        );
        check_lines(
            DisplayScreen::scan_to_pay(&labels(), "118,00 kr"),
            ["  Scan the QR code  ", "to pay     118,00 kr"],
        );
        check_lines(
            DisplayScreen::thank_you(&labels()),
            ["     Thank you!     ", "    Welcome back    "],
        );
        check_lines(
            DisplayScreen::text("a line much longer than twenty", ""),
            ["a line much longer t", "                    "],
        );
    }

    #[test]
    fn an_amount_that_fills_the_line_leaves_no_room_for_the_name() {
        check_lines(
            DisplayScreen::item(
                &labels(),
                "Kaffe",
                "12 345 678,00 kr",
                "99 999 999 999,00 kr",
            ),
            ["Kaf 12 345 678,00 kr", "99 999 999 999,00 kr"],
        );
    }
}
