//! The sale screen can be worked without touching it: Tab moves from control to control and
//! Space or Enter presses the one the keyboard is on, for a cashier with a keyboard-only till or
//! a switch device. Run with `cargo test -p kassa-ui --test keyboard`.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use i_slint_backend_testing::testing_backend::{TestingBackend, TestingBackendOptions};
use kassa_ui::Language;
use kassa_ui::bind;
use kassa_ui::sale_screen::{LineSnapshot, Product, SaleScreenModel, SaleSnapshot, SaleStatus};
use kassa_ui::screens::{ReturnScreen, SaleScreen, TillWindow};
use kassa_ui::slint::platform::{Key, WindowEvent};
use kassa_ui::slint::{self, ComponentHandle, SharedString};

fn press(window: &slint::Window, text: SharedString) {
    window.dispatch_event(WindowEvent::KeyPressed { text: text.clone() });
    window.dispatch_event(WindowEvent::KeyReleased { text });
}

fn model() -> SaleScreenModel {
    let mut m = SaleScreenModel::new(Language::English, "SEK".parse().expect("SEK"));
    m.set_products(vec![Product {
        name: "Socks".into(),
        reference: "socks".into(),
        unit_price: 4_950,
    }]);
    m.sale_changed(SaleSnapshot {
        sale_id: "sale-1".into(),
        status: SaleStatus::Open,
        currency: "SEK".parse().expect("SEK"),
        lines: vec![LineSnapshot {
            line_no: 1,
            name: "Socks".into(),
            quantity: 1,
            unit_price: 4_950,
            total: 4_950,
        }],
        total: 4_950,
        due: 4_950,
        tenders: vec![],
        receipt_no: None,
        attempts: 0,
        revision: 1,
        payment: None,
    });
    m
}

/// A fresh sale screen; `tabs` presses of Tab, then `key`; what the screen was asked to do.
fn action_after(tabs: usize, key: SharedString) -> Option<String> {
    let till = TillWindow::new().expect("the cashier's window");
    till.show().expect("shown");
    till.window().set_size(slint::PhysicalSize::new(1024, 768));
    bind::show_sale(&till, &model().view(0));
    let did: Rc<RefCell<Option<String>>> = Rc::default();
    let sale = till.global::<SaleScreen>();
    let note = |what: &'static str| {
        let did = Rc::clone(&did);
        move || *did.borrow_mut() = Some(what.to_string())
    };
    sale.on_pay(note("pay"));
    sale.on_open_tender(note("cash or card"));
    sale.on_open_discount(note("discount"));
    let d = Rc::clone(&did);
    sale.on_add_product(move |_| *d.borrow_mut() = Some("add product".into()));
    till.global::<ReturnScreen>()
        .on_open_returns(note("return"));
    for _ in 0..tabs {
        press(till.window(), Key::Tab.into());
    }
    press(till.window(), key);
    if sale.get_confirm_void() {
        return Some("cancel sale".into());
    }
    did.borrow().clone()
}

#[test]
fn tab_reaches_every_action_of_the_sale_and_space_or_enter_presses_it() {
    slint::platform::set_platform(Box::new(TestingBackend::new(TestingBackendOptions {
        mock_time: true,
        threading: false,
        renderer_name: Some("software".into()),
    })))
    .expect("the testing platform is the first and only one");
    let reached: BTreeSet<String> = (1..=30)
        .filter_map(|tabs| action_after(tabs, " ".into()))
        .collect();
    for action in [
        "add product",
        "pay",
        "cash or card",
        "discount",
        "return",
        "cancel sale",
    ] {
        assert!(
            reached.contains(action),
            "{action} cannot be reached with Tab and Space; reached: {reached:?}"
        );
    }
    // Enter presses as Space does; a key that is neither presses nothing.
    let pay_at = (1..=30)
        .find(|&tabs| action_after(tabs, " ".into()).as_deref() == Some("pay"))
        .expect("pay is reachable");
    assert_eq!(
        action_after(pay_at, Key::Return.into()).as_deref(),
        Some("pay")
    );
    assert_eq!(action_after(pay_at, "x".into()), None);
}
