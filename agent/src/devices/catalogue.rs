//! What a scan becomes: product codes through the catalogue into lines of the open sale (or a
//! new one), receipts and Klarna customer codes (told apart by `codes`) into events for the
//! returns flow and the next payment, anything else into a warning. The catalogue is checked
//! when it is loaded, so a typo in it is an error at start-up rather than a product that
//! silently never scans.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use kassa_drivers::Scan;

use super::codes::{self, ScannedText};
use super::{CatalogueItem, DeviceEvent, DevicesError, Shared};
use crate::money::KLARNA_MAX_AMOUNT;
use crate::store::{LineInput, SaleState};

/// Longest unknown scan text kept in a log line or event (a jammed scanner can send kilobytes).
const UNKNOWN_SCAN_SHOWN: usize = 64;

/// Products by GTIN-14, the form the scanner reports every product code in.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    by_gtin: HashMap<String, CatalogueItem>,
}

/// `code` as the 14-digit GTIN the scanner reports, if it is a product code with a valid check
/// digit (a typo in the catalogue would otherwise never match a scan, silently).
pub fn normalise_gtin(code: &str) -> Option<String> {
    let code = code.trim();
    let plausible =
        matches!(code.len(), 8 | 12 | 13 | 14) && code.bytes().all(|b| b.is_ascii_digit());
    if !plausible || !kassa_drivers::gs1::mod10_valid(code) {
        return None;
    }
    Some(format!("{code:0>14}"))
}

impl Catalogue {
    /// The configured products: the CSV file's first, then `[[catalogue]]` entries, which win.
    pub fn load(items: &[CatalogueItem], file: Option<&Path>) -> Result<Self, DevicesError> {
        let mut all = Vec::new();
        if let Some(path) = file {
            let f = std::fs::File::open(path).map_err(|e| {
                DevicesError::Catalogue(format!("cannot read {}: {e}", path.display()))
            })?;
            all.extend(Self::parse_csv(f, &path.display().to_string())?);
        }
        all.extend(items.iter().cloned());
        Self::build(all)
    }

    /// Rows of a catalogue CSV: header `gtin,name,unit_price`, `#` starts a comment line.
    pub fn parse_csv(reader: impl Read, origin: &str) -> Result<Vec<CatalogueItem>, DevicesError> {
        let mut csv = csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(reader);
        csv.deserialize()
            .map(|row| row.map_err(|e| DevicesError::Catalogue(format!("{origin}: {e}"))))
            .collect()
    }

    /// Checks every item; a later item with the same GTIN replaces an earlier one.
    pub fn build(items: impl IntoIterator<Item = CatalogueItem>) -> Result<Self, DevicesError> {
        let mut by_gtin = HashMap::new();
        for item in items {
            let bad = |why: &str| DevicesError::Catalogue(format!("{:?}: {why}", item.gtin));
            let gtin = normalise_gtin(&item.gtin)
                .ok_or_else(|| bad("not an EAN-8/UPC-A/EAN-13/GTIN-14 with a valid check digit"))?;
            if item.name.trim().is_empty() || item.name.len() > 255 {
                return Err(bad("name must be 1 to 255 characters"));
            }
            if !(0..=KLARNA_MAX_AMOUNT).contains(&item.unit_price) {
                return Err(bad("unit_price must be 0 to 2147483647 minor units"));
            }
            by_gtin.insert(gtin, item);
        }
        Ok(Self { by_gtin })
    }

    /// The product with this code, in any of its lengths.
    pub fn find(&self, gtin: &str) -> Option<&CatalogueItem> {
        self.by_gtin.get(&normalise_gtin(gtin)?)
    }

    pub fn len(&self) -> usize {
        self.by_gtin.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_gtin.is_empty()
    }
}

impl Shared {
    /// One scan, as the scanner's task (`service`) reads it.
    pub(super) async fn scanned(&self, scan: Scan) {
        match scan {
            Scan::Product { gtin, problems, .. } => {
                // A GS1 field that does not read never hides the product (it is still sold);
                // it is reported, so a label printer's fault can be found.
                for p in &problems {
                    tracing::warn!(gtin = %gtin, field = %p.data, "GS1 field left out of a scan: {}", p.error);
                }
                self.sell(gtin).await
            }
            Scan::Text { text, .. } => match codes::read(text) {
                ScannedText::Receipt(code) => {
                    tracing::info!("receipt code scanned (for a return)");
                    self.publish(DeviceEvent::ReceiptScanned { code });
                }
                ScannedText::KlarnaCustomerToken(token) => {
                    // The token identifies a customer to Klarna: it goes to Klarna, not into logs.
                    tracing::info!("Klarna customer code scanned; the next payment passes it on");
                    self.terminal.keep_customer_token(Some(token));
                    self.publish(DeviceEvent::CustomerCodeScanned);
                }
                ScannedText::Unknown(text) => self.not_understood(&text),
            },
            Scan::Unknown(text) => self.not_understood(&text),
        }
    }

    /// A scan the till has no use for: logged and shown, shortened.
    fn not_understood(&self, text: &str) {
        let text: String = text.chars().take(UNKNOWN_SCAN_SHOWN).collect();
        tracing::warn!(%text, "scanned code not understood");
        self.publish(DeviceEvent::UnknownScan { text });
    }

    /// Adds one of the scanned product to the open sale, or opens a sale for it.
    async fn sell(&self, gtin: String) {
        let Some(item) = self.catalogue.find(&gtin) else {
            tracing::warn!(%gtin, "scanned product is not in the catalogue; nothing added");
            self.publish(DeviceEvent::UnknownProduct { gtin });
            return;
        };
        let line = LineInput {
            name: item.name.clone(),
            reference: Some(item.gtin.clone()),
            quantity: 1,
            unit_price: item.unit_price,
        };
        let open = match self.terminal.counter_sale() {
            Some(id) => match self.terminal.sale(&id).await {
                Ok(v) if v.sale.state == SaleState::Open => Some(id),
                _ => None,
            },
            None => None,
        };
        let result = match &open {
            Some(id) => self.terminal.add_lines(id, None, vec![line]).await,
            None => self.terminal.open_sale(None, None, vec![line]).await,
        };
        match result {
            Ok(view) => {
                self.publish(DeviceEvent::ProductAdded {
                    sale_id: view.sale.id,
                    gtin,
                    name: item.name.clone(),
                });
            }
            Err(e) => {
                tracing::warn!(%gtin, "scanned product not added: {e}");
                self.publish(DeviceEvent::ScanRefused {
                    gtin,
                    reason: e.to_string(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_codes_match_scans_in_any_length_and_typos_are_refused() {
        let csv = "# unit_price in minor units\ngtin,name,unit_price\n7310865004703, Coffee 500 g ,3900\n96385074,Gum,1500\n";
        let items = Catalogue::parse_csv(csv.as_bytes(), "test.csv").expect("valid csv");
        let cat = Catalogue::build(items).expect("valid catalogue");
        assert_eq!(
            cat.find("07310865004703").map(|i| i.name.as_str()),
            Some("Coffee 500 g")
        );
        assert_eq!(cat.find("00000096385074").map(|i| i.unit_price), Some(1500));
        assert!(cat.find("7310865004704").is_none());
        let typo = CatalogueItem {
            gtin: "7310865004704".into(),
            name: "Coffee".into(),
            unit_price: 3900,
        };
        assert!(Catalogue::build([typo]).is_err());
        let err = Catalogue::parse_csv("gtin,name,unit_price\n123,x,abc\n".as_bytes(), "bad.csv")
            .expect_err("a price that is no number");
        assert!(err.to_string().contains("bad.csv"), "{err}");
    }

    #[test]
    fn the_shipped_demo_catalogue_is_valid() {
        let csv = include_str!("../../../assets/catalogue.example.csv");
        let items = Catalogue::parse_csv(csv.as_bytes(), "catalogue.example.csv").expect("parses");
        assert!(Catalogue::build(items).expect("valid").len() >= 4);
    }
}
