//! The Rust side's words on the screens: what the agent's data becomes in the manager area, the
//! status bar and the result screen (journal events, outbox and device states, Klarna's figures),
//! in English, Swedish and German. The `.slint` files translate their own texts with `@tr`; this
//! table is for texts made from data, so that a Swedish screen never shows an English word.

use crate::Language;

/// (English, Swedish, German). English is the key; `{}` marks where an argument goes.
const TABLE: &[(&str, &str, &str)] = &[
    // Journal events, as the log pane names them.
    ("Sale opened", "Köp öppnat", "Verkauf eröffnet"),
    ("Line added", "Rad tillagd", "Zeile hinzugefügt"),
    ("Line removed", "Rad borttagen", "Zeile entfernt"),
    ("Line changed", "Rad ändrad", "Zeile geändert"),
    (
        "Payment requested",
        "Betalning begärd",
        "Zahlung angefordert",
    ),
    ("QR code shown", "QR-kod visad", "QR-Code angezeigt"),
    (
        "Customer opened the link",
        "Kunden öppnade länken",
        "Kundschaft hat den Link geöffnet",
    ),
    (
        "Payment completed",
        "Betalning slutförd",
        "Zahlung abgeschlossen",
    ),
    ("Payment declined", "Betalning nekad", "Zahlung abgelehnt"),
    (
        "Payment expired",
        "Betalning utgången",
        "Zahlung abgelaufen",
    ),
    (
        "Payment canceled",
        "Betalning avbruten",
        "Zahlung abgebrochen",
    ),
    (
        "Payment failed",
        "Betalning misslyckad",
        "Zahlung fehlgeschlagen",
    ),
    ("Finalized", "Slutförd", "Abgeschlossen"),
    ("Receipt issued", "Kvitto utfärdat", "Beleg ausgestellt"),
    ("Receipt printed", "Kvitto utskrivet", "Beleg gedruckt"),
    ("Sale canceled", "Köp avbrutet", "Verkauf abgebrochen"),
    ("Cancel confirmed", "Avbrott bekräftat", "Abbruch bestätigt"),
    (
        "Paid after the sale was canceled",
        "Betalt efter att köpet avbröts",
        "Bezahlt nach Abbruch des Verkaufs",
    ),
    (
        "Charged after the sale was canceled",
        "Debiterat efter att köpet avbröts",
        "Belastet nach Abbruch des Verkaufs",
    ),
    ("Payment in doubt", "Betalning oviss", "Zahlung ungewiss"),
    ("Doubt resolved", "Ovisshet löst", "Ungewissheit geklärt"),
    (
        "Klarna notification",
        "Avisering från Klarna",
        "Benachrichtigung von Klarna",
    ),
    (
        "Queued to send",
        "Köad för att skickas",
        "Zum Senden eingereiht",
    ),
    (
        "Sent to Klarna",
        "Skickad till Klarna",
        "An Klarna gesendet",
    ),
    ("Needs a manager", "Behöver en chef", "Braucht eine Leitung"),
    ("Resolved", "Löst", "Erledigt"),
    (
        "Tender taken",
        "Betalning mottagen",
        "Zahlung entgegengenommen",
    ),
    ("Tender voided", "Betalning makulerad", "Zahlung storniert"),
    (
        "Tender refunded",
        "Betalning återbetald",
        "Zahlung erstattet",
    ),
    ("Cash movement", "Kontantrörelse", "Bargeldbewegung"),
    ("Staff session", "Inloggning", "Anmeldung"),
    ("Return recorded", "Retur registrerad", "Rückgabe erfasst"),
    ("Manager action", "Chefsåtgärd", "Leitungsaktion"),
    (
        "Journal archived",
        "Journal arkiverad",
        "Journal archiviert",
    ),
    ("Refund", "Återbetalning", "Erstattung"),
    ("Capture", "Debitering", "Einzug"),
    ("Void", "Makulering", "Storno"),
    ("Receipt {}", "Kvitto {}", "Beleg {}"),
    ("refused", "nekad", "abgelehnt"),
    // Reprinting a receipt.
    (
        "Printing the receipt…",
        "Skriver ut kvittot…",
        "Beleg wird gedruckt…",
    ),
    (
        "This till has no receipt printer",
        "Den här kassan har ingen kvittoskrivare",
        "Diese Kasse hat keinen Belegdrucker",
    ),
    (
        "The receipt was not printed: {}",
        "Kvittot skrevs inte ut: {}",
        "Der Beleg wurde nicht gedruckt: {}",
    ),
    // What a day close finds still open.
    (
        "Sale opened {} · lines: {} · {}",
        "Köp öppnat {} · rader: {} · {}",
        "Verkauf eröffnet {} · Zeilen: {} · {}",
    ),
    (
        "Payments still in progress: {}",
        "Betalningar som pågår: {}",
        "Laufende Zahlungen: {}",
    ),
    (
        "Operations waiting for Klarna or a manager: {}",
        "Åtgärder som väntar på Klarna eller en chef: {}",
        "Vorgänge, die auf Klarna oder eine Leitung warten: {}",
    ),
    // The X and Z reports' labels (figures, ids and hashes stay as they are). A label beside a
    // count has 18 columns of the 40 (16 when indented), one beside an amount alone 19 (17).
    (
        "X-REPORT (NOT A CLOSE)",
        "X-RAPPORT (INGEN STÄNGNING)",
        "X-BERICHT (KEIN ABSCHLUSS)",
    ),
    (
        "Z-REPORT (DAY CLOSE)",
        "Z-RAPPORT (DAGSAVSLUT)",
        "Z-BERICHT (TAGESABSCHLUSS)",
    ),
    ("Terminal", "Kassa", "Kasse"),
    ("Made", "Skapad", "Erstellt"),
    ("From", "Från", "Von"),
    ("To", "Till", "Bis"),
    ("Journal rows", "Journalrader", "Journalzeilen"),
    ("Chain head", "Kedjans huvud", "Kettenkopf"),
    (
        "No sales in this period.",
        "Ingen försäljning under perioden.",
        "Keine Verkäufe in diesem Zeitraum.",
    ),
    ("count", "antal", "Anzahl"),
    ("Sales opened", "Köp öppnade", "Verkäufe eröffnet"),
    ("Sales abandoned", "Köp avbrutna", "Verkäufe abgebr."),
    ("Sales", "Försäljning", "Verkäufe"),
    ("Returns", "Returer", "Rückgaben"),
    ("Refunds sent", "Återbet. skickade", "Erstatt. gesendet"),
    ("Refunds pending", "Återbet. väntande", "Erstatt. offen"),
    ("Paid by", "Betalt med", "Bezahlt mit"),
    ("Klarna", "Klarna", "Klarna"),
    ("cash", "kontant", "bar"),
    ("card terminal", "kortterminal", "Kartenterminal"),
    ("Refunded by", "Återbetalt med", "Erstattet mit"),
    ("Klarna (sent)", "Klarna skickat", "Klarna gesendet"),
    ("Cash drawer", "Kassalåda", "Kassenlade"),
    ("float", "växelkassa", "Wechselgeld"),
    ("paid in", "insatt", "eingezahlt"),
    ("paid out", "uttaget", "ausgezahlt"),
    ("cash sales", "kontantförs.", "Barverkäufe"),
    ("cash returned", "kontant åter", "bar erstattet"),
    ("(of which rounding)", "(varav avrundn.)", "(davon Rundung)"),
    ("expected", "förväntat", "erwartet"),
    ("counted", "räknat", "gezählt"),
    ("difference", "differens", "Differenz"),
    (
        "Payments by outcome",
        "Betalningar efter utfall",
        "Zahlungen nach Ergebnis",
    ),
    ("declined", "nekade", "abgelehnt"),
    ("expired", "utgångna", "abgelaufen"),
    ("failed", "misslyckade", "fehlgeschlagen"),
    (
        "approved after abandon",
        "godk. e. avbrott",
        "spät genehmigt",
    ),
    // Return slips.
    ("RETURN", "RETUR", "RÜCKGABE"),
    (
        "REFUND TO KLARNA",
        "ÅTERBETALAS VIA KLARNA",
        "ERSTATTUNG AN KLARNA",
    ),
    (
        "Refund sent to Klarna.",
        "Återbetalningen är skickad till Klarna.",
        "Die Erstattung ist an Klarna gesendet.",
    ),
    (
        "REFUND PENDING: it reaches your Klarna account as soon as the store is online.",
        "ÅTERBETALNING VÄNTAR: den når ditt Klarna-konto så snart butiken är online.",
        "ERSTATTUNG AUSSTEHEND: Sie erreicht Ihr Klarna-Konto, sobald das Geschäft online ist.",
    ),
    (
        "Refund needs a manager's attention.",
        "Återbetalningen behöver en chef.",
        "Die Erstattung braucht eine Leitung.",
    ),
    ("Return", "Retur", "Rückgabe"),
    ("Order", "Beställning", "Bestellung"),
    ("Sale", "Köp", "Verkauf"),
    ("Reason", "Orsak", "Grund"),
    ("line", "rad", "Zeile"),
    ("Total back", "Totalt tillbaka", "Insgesamt zurück"),
    ("Cash paid out", "Kontant utbetalt", "Bar ausgezahlt"),
    (
        "Refund on the card terminal",
        "Återbetalning på kortterminalen",
        "Erstattung am Kartenterminal",
    ),
    (
        "Klarna refund (sent once Klarna answers)",
        "Återbetalning via Klarna (skickas när Klarna svarar)",
        "Klarna-Erstattung (gesendet, sobald Klarna antwortet)",
    ),
    // Why the till refused what the cashier asked.
    (
        "Not found: check the id or the receipt code",
        "Hittades inte: kontrollera id eller kvittokod",
        "Nicht gefunden: ID oder Belegcode prüfen",
    ),
    ("Refused: {}", "Nekat: {}", "Abgelehnt: {}"),
    (
        "The till refused this: check what was typed",
        "Kassan nekade: kontrollera det som skrevs",
        "Die Kasse hat abgelehnt: Eingabe prüfen",
    ),
    (
        "Klarna cannot be reached right now; take another payment method",
        "Klarna går inte att nå just nu; ta ett annat betalsätt",
        "Klarna ist gerade nicht erreichbar; andere Zahlungsart nehmen",
    ),
    (
        "Klarna is not offered for this purchase; take another payment method",
        "Klarna erbjuds inte för det här köpet; ta ett annat betalsätt",
        "Klarna wird für diesen Kauf nicht angeboten; andere Zahlungsart nehmen",
    ),
    (
        "Klarna refused ({})",
        "Klarna nekade ({})",
        "Klarna hat abgelehnt ({})",
    ),
    (
        "This needs a manager's approval",
        "Det här behöver en chefs godkännande",
        "Dafür braucht es die Freigabe einer Leitung",
    ),
    (
        "The till ran into an error; try again",
        "Kassan stötte på ett fel; försök igen",
        "In der Kasse ist ein Fehler aufgetreten; erneut versuchen",
    ),
    (
        "Signed in as {}: sign out first to act as someone else",
        "Inloggad som {}: logga ut först för att agera som någon annan",
        "Angemeldet als {}: erst abmelden, um als jemand anderes zu handeln",
    ),
    (
        "Sign in first (staff id and PIN)",
        "Logga in först (personal-id och PIN)",
        "Zuerst anmelden (Personal-ID und PIN)",
    ),
    ("Wrong manager PIN", "Fel chefs-PIN", "Falsche Leitungs-PIN"),
    (
        "Too many wrong PINs; wait a minute",
        "För många fel PIN; vänta en minut",
        "Zu viele falsche PINs; eine Minute warten",
    ),
    (
        "The manager PIN could not be checked",
        "Chefens PIN kunde inte kontrolleras",
        "Die Leitungs-PIN konnte nicht geprüft werden",
    ),
    (
        "amount too large",
        "beloppet är för stort",
        "Betrag zu groß",
    ),
    // Where a sale or an operation stands.
    ("open", "öppet", "offen"),
    ("paid", "betalt", "bezahlt"),
    ("canceled", "avbrutet", "abgebrochen"),
    ("waiting", "väntar", "wartet"),
    ("sent", "skickad", "gesendet"),
    ("needs a manager", "behöver en chef", "braucht eine Leitung"),
    ("resolved", "löst", "erledigt"),
    ("approved", "godkänd", "genehmigt"),
    // Outbox and Klarna's figures in the manager's status tab.
    (
        "needs a manager: {}",
        "behöver en chef: {}",
        "braucht eine Leitung: {}",
    ),
    (
        "waiting, next try {}",
        "väntar, nästa försök {}",
        "wartet, nächster Versuch {}",
    ),
    ("{} tries", "{} försök", "{} Versuche"),
    (
        "no calls in the last 5 minutes",
        "inga anrop de senaste 5 minuterna",
        "keine Aufrufe in den letzten 5 Minuten",
    ),
    (
        "{} % of {} calls answered, slowest 1 % over {} ms",
        "{} % av {} anrop besvarade, långsammaste 1 % över {} ms",
        "{} % von {} Aufrufen beantwortet, langsamstes 1 % über {} ms",
    ),
    (
        "{} % of {} calls answered",
        "{} % av {} anrop besvarade",
        "{} % von {} Aufrufen beantwortet",
    ),
    // Klarna's service-level categories.
    (
        "Payment Transaction General",
        "Betalningstransaktioner, allmänt",
        "Zahlungstransaktionen allgemein",
    ),
    ("Payment Request", "Betalningsförfrågan", "Zahlungsanfrage"),
    (
        "Payment Confirmation",
        "Betalningsbekräftelse",
        "Zahlungsbestätigung",
    ),
    (
        "Customer Token Charge",
        "Debitering med kundtoken",
        "Belastung per Kundentoken",
    ),
    (
        "Read-only Payment Transaction",
        "Läsning av betalningstransaktion",
        "Lesen von Zahlungstransaktionen",
    ),
    (
        "Messaging Placements",
        "Klarna-meddelanden",
        "Klarna-Hinweise",
    ),
    // Devices.
    ("Customer display", "Kunddisplay", "Kundenanzeige"),
    ("Scanner", "Skanner", "Scanner"),
    ("Receipt printer", "Kvittoskrivare", "Belegdrucker"),
    ("Card reader", "Kortläsare", "Kartenleser"),
    ("out of paper", "slut på papper", "kein Papier"),
    ("cover open", "luckan öppen", "Deckel offen"),
    ("not connected", "inte ansluten", "nicht verbunden"),
    ("connected", "ansluten", "verbunden"),
    ("ready", "redo", "bereit"),
    ("not answering", "svarar inte", "antwortet nicht"),
    ("{}: {}", "{}: {}", "{}: {}"),
    // Why Klarna's payment ended, as the result screen says it.
    (
        "canceled by the cashier",
        "avbruten av kassören",
        "an der Kasse abgebrochen",
    ),
    (
        "declined by the customer",
        "nekad av kunden",
        "von der Kundschaft abgelehnt",
    ),
    (
        "the customer did not finish in time",
        "kunden blev inte klar i tid",
        "die Kundschaft wurde nicht rechtzeitig fertig",
    ),
    (
        "Klarna approved after the till gave up; the charge is refunded",
        "Klarna godkände efter att kassan gett upp; beloppet återbetalas",
        "Klarna hat nach dem Aufgeben der Kasse genehmigt; der Betrag wird erstattet",
    ),
    (
        "customer approved after the sale was abandoned; not charged",
        "kunden godkände efter att köpet avbrutits; inget debiterat",
        "Kundschaft hat nach Abbruch des Verkaufs genehmigt; nicht belastet",
    ),
    (
        "a manager found the payment at Klarna",
        "en chef hittade betalningen hos Klarna",
        "eine Leitung hat die Zahlung bei Klarna gefunden",
    ),
    (
        "a manager confirmed the customer was not charged",
        "en chef bekräftade att kunden inte debiterades",
        "eine Leitung hat bestätigt, dass nicht belastet wurde",
    ),
];

/// `english` in `language`: the table's translation, or the English itself for a text the
/// table does not have (a device's own words, a name).
pub fn tr(language: Language, english: &str) -> String {
    let found = TABLE.iter().find(|(en, _, _)| *en == english);
    match (language, found) {
        (Language::Swedish, Some((_, sv, _))) => (*sv).to_owned(),
        (Language::German, Some((_, _, de))) => (*de).to_owned(),
        _ => english.to_owned(),
    }
}

/// As `tr`, with each `{}` replaced by the next argument.
pub fn trf(language: Language, english: &str, args: &[&str]) -> String {
    let pattern = tr(language, english);
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut args = args.iter();
    let mut rest = pattern.as_str();
    while let Some(at) = rest.find("{}") {
        out.push_str(&rest[..at]);
        out.push_str(args.next().copied().unwrap_or(""));
        rest = &rest[at + 2..];
    }
    out.push_str(rest);
    out
}

/// Every English text the table translates (for the tests that look for English on a
/// Swedish or German screen).
pub fn english_texts() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(en, _, _)| *en)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_has_a_swedish_and_a_german_translation_with_the_same_arguments() {
        let mut seen = std::collections::HashSet::new();
        for (en, sv, de) in TABLE {
            assert!(seen.insert(*en), "{en:?} is in the table twice");
            for (lang, t) in [("sv", sv), ("de", de)] {
                assert!(!t.trim().is_empty(), "{en:?} has no {lang} text");
                assert_eq!(
                    en.matches("{}").count(),
                    t.matches("{}").count(),
                    "{en:?} and its {lang} text {t:?} take different arguments"
                );
            }
        }
    }

    #[test]
    fn arguments_go_where_the_language_puts_them() {
        assert_eq!(trf(Language::Swedish, "{} tries", &["3"]), "3 försök");
        assert_eq!(trf(Language::German, "Receipt {}", &["1042"]), "Beleg 1042");
        assert_eq!(trf(Language::English, "unknown {}", &["x"]), "unknown x");
    }
}
