//! Finds what a cashier would see as a broken screen, from Slint's own element geometry and text
//! metrics (no pixel heuristics): a control or text outside the window or cut by its container, a
//! text that does not fit its box (clipped, elided, or a word broken in the middle), two controls
//! or texts on top of each other, a control smaller than a finger (44 px) or without a name for
//! screen readers. Reads Slint's internal item tree, pinned to the exact Slint version.

use std::ops::ControlFlow;

use i_slint_core::accessibility::AccessibleStringProperty;
use i_slint_core::graphics::{Brush, Color};
use i_slint_core::item_tree::{ItemRc, ParentItemTraversalMode};
use i_slint_core::items::{
    AccessibleRole, BasicBorderRectangle, BorderRectangle, Clip, ComplexText, Flickable, Opacity,
    Rectangle, SimpleText, TextOverflow, TextWrap, WindowItem,
};
use i_slint_core::layout::Orientation;
use i_slint_core::window::WindowInner;
use kassa_ui::slint;

/// Half a pixel either way is rounding, not a defect.
const SLACK: f32 = 1.0;
/// WCAG 2.5.5's target size, which the issue asks of every control.
const MIN_TARGET: f32 = 44.0;

#[derive(Debug, Clone, Copy)]
struct Rect {
    x: f32,
    y: f32,
    w: f32,
    h: f32,
}

impl Rect {
    fn right(&self) -> f32 {
        self.x + self.w
    }
    fn bottom(&self) -> f32 {
        self.y + self.h
    }
    fn intersect(&self, o: &Rect) -> Option<Rect> {
        let x = self.x.max(o.x);
        let y = self.y.max(o.y);
        let r = self.right().min(o.right());
        let b = self.bottom().min(o.bottom());
        (r - x > SLACK && b - y > SLACK).then_some(Rect {
            x,
            y,
            w: r - x,
            h: b - y,
        })
    }
    /// `self` reaches past `o` by more than rounding on some side.
    fn sticks_out_of(&self, o: &Rect) -> bool {
        self.x < o.x - SLACK
            || self.y < o.y - SLACK
            || self.right() > o.right() + SLACK
            || self.bottom() > o.bottom() + SLACK
    }
}

impl std::fmt::Display for Rect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0}×{:.0} at ({:.0},{:.0})",
            self.w, self.h, self.x, self.y
        )
    }
}

fn window_rect(item: &ItemRc) -> Rect {
    let g = item.geometry();
    let p = item.map_to_window(g.origin);
    Rect {
        x: p.x,
        y: p.y,
        w: g.size.width,
        h: g.size.height,
    }
}

/// What a leaf of the screen is, for the overlap check.
#[derive(Debug, Clone)]
struct Leaf {
    item: ItemRc,
    rect: Rect,
    what: String,
    layer: usize,
}

/// Where an item stands: hidden, in a scrolled list, or clipped by `clip`.
struct Placement {
    /// The rectangle the item can be seen in (the window, narrowed by every clipping ancestor).
    clip: Rect,
    /// Under a Flickable: being partly scrolled out of view is how lists work.
    scrolled: bool,
    /// The child of the window's root the item is under: later full-window ones hide earlier.
    top: Option<ItemRc>,
}

fn placement(item: &ItemRc, window: Rect) -> Option<Placement> {
    let mut clip = window;
    let mut scrolled = false;
    let mut top = None;
    let mut cur = item.parent_item(ParentItemTraversalMode::StopAtPopups);
    let mut last = item.clone();
    while let Some(ancestor) = cur {
        if let Some(c) = ancestor.downcast::<Clip>() {
            let c = c.as_pin_ref();
            if c.is_visibility_clip() && c.clip() {
                return None;
            }
        }
        if let Some(o) = ancestor.downcast::<Opacity>()
            && o.as_pin_ref().opacity() <= 0.01
        {
            return None;
        }
        if ancestor.downcast::<Flickable>().is_some() {
            scrolled = true;
        }
        if ancestor.borrow().as_ref().clips_children() {
            clip = clip.intersect(&window_rect(&ancestor))?;
        }
        let next = ancestor.parent_item(ParentItemTraversalMode::StopAtPopups);
        if next.is_none() {
            top = Some(last.clone());
        }
        last = ancestor;
        cur = next;
    }
    Some(Placement {
        clip,
        scrolled,
        top,
    })
}

fn is_control(role: AccessibleRole) -> bool {
    matches!(
        role,
        AccessibleRole::Button
            | AccessibleRole::Checkbox
            | AccessibleRole::Combobox
            | AccessibleRole::Slider
            | AccessibleRole::Spinbox
            | AccessibleRole::Switch
            | AccessibleRole::Tab
            | AccessibleRole::TextInput
            | AccessibleRole::ListItem
    )
}

/// The control (button, list row...) a text is part of, if any.
fn control_ancestor(item: &ItemRc) -> Option<ItemRc> {
    let mut cur = item.parent_item(ParentItemTraversalMode::StopAtPopups);
    while let Some(a) = cur {
        if is_control(a.accessible_role()) {
            return Some(a);
        }
        cur = a.parent_item(ParentItemTraversalMode::StopAtPopups);
    }
    None
}

fn is_ancestor(a: &ItemRc, of: &ItemRc) -> bool {
    let mut cur = of.parent_item(ParentItemTraversalMode::StopAtPopups);
    while let Some(p) = cur {
        if &p == a {
            return true;
        }
        cur = p.parent_item(ParentItemTraversalMode::StopAtPopups);
    }
    false
}

/// The text of a text item, how it wraps and whether it elides.
fn text_of(item: &ItemRc) -> Option<(String, TextWrap, TextOverflow)> {
    if let Some(t) = item.downcast::<SimpleText>() {
        return Some((
            t.as_pin_ref().text().to_string(),
            TextWrap::NoWrap,
            TextOverflow::Clip,
        ));
    }
    if let Some(t) = item.downcast::<ComplexText>() {
        let t = t.as_pin_ref();
        return Some((t.text().to_string(), t.wrap(), t.overflow()));
    }
    None
}

fn short(text: &str) -> String {
    let one_line = text.replace('\n', "⏎");
    if one_line.chars().count() > 40 {
        format!("{}…", one_line.chars().take(40).collect::<String>())
    } else {
        one_line
    }
}

/// The window's root item and its whole area in logical pixels.
fn root_and_area(window: &slint::Window) -> (ItemRc, Rect) {
    let inner = WindowInner::from_pub(window);
    let size = window.size().to_logical(window.scale_factor());
    (
        ItemRc::new_root(inner.component()),
        Rect {
            x: 0.0,
            y: 0.0,
            w: size.width,
            h: size.height,
        },
    )
}

/// Every defect on the window as laid out at its current size, one line each.
pub fn problems(window: &slint::Window) -> Vec<String> {
    let adapter = WindowInner::from_pub(window).window_adapter();
    let (root, whole) = root_and_area(window);
    let mut found = Vec::new();
    let mut leaves: Vec<Leaf> = Vec::new();
    let mut tops: Vec<ItemRc> = Vec::new();

    root.visit_descendants(|item| {
        let Some(place) = placement(item, whole) else {
            return ControlFlow::<()>::Continue(());
        };
        let rect = window_rect(item);
        if rect.w <= SLACK || rect.h <= SLACK {
            return ControlFlow::Continue(());
        }
        // In a scrolled list only the part in view counts; a row scrolled away is not there.
        let in_view = match rect.intersect(&place.clip) {
            Some(r) => r,
            None => return ControlFlow::Continue(()),
        };
        let layer = match &place.top {
            Some(top) => match tops.iter().position(|t| t == top) {
                Some(i) => i,
                None => {
                    tops.push(top.clone());
                    tops.len() - 1
                }
            },
            None => 0,
        };
        let role = item.accessible_role();
        if is_control(role) {
            let label = item
                .accessible_string_property(AccessibleStringProperty::Label)
                .unwrap_or_default()
                .to_string();
            let what = format!("{role:?} {:?}", short(&label));
            if label.trim().is_empty() {
                found.push(format!("{what}: has no accessible label"));
            }
            check_placement(&mut found, &what, rect, &place, whole);
            if rect.w < MIN_TARGET - SLACK || rect.h < MIN_TARGET - SLACK {
                found.push(format!(
                    "{what}: {rect} is smaller than a 44 px touch target"
                ));
            }
            leaves.push(Leaf {
                item: item.clone(),
                rect: in_view,
                what,
                layer,
            });
        } else if let Some((text, wrap, overflow)) = text_of(item) {
            if text.trim().is_empty() {
                return ControlFlow::Continue(());
            }
            let what = format!("text {:?}", short(&text));
            if let Some(p) = contrast_problem(item) {
                found.push(format!("{what}: {p}"));
            }
            let h =
                item.borrow()
                    .as_ref()
                    .layout_info(Orientation::Horizontal, -1.0, &adapter, item);
            let v =
                item.borrow()
                    .as_ref()
                    .layout_info(Orientation::Vertical, rect.w, &adapter, item);
            match wrap {
                TextWrap::NoWrap if rect.w + SLACK < h.preferred => {
                    let how = if overflow == TextOverflow::Elide {
                        "elided"
                    } else {
                        "cut off"
                    };
                    found.push(format!(
                        "{what}: needs {:.0} px wide, has {:.0} ({how})",
                        h.preferred, rect.w
                    ));
                }
                TextWrap::WordWrap if rect.w + SLACK < h.min => {
                    found.push(format!(
                        "{what}: its longest word needs {:.0} px, has {:.0} (broken mid-word)",
                        h.min, rect.w
                    ));
                }
                _ => {}
            }
            if rect.h + SLACK < v.preferred {
                found.push(format!(
                    "{what}: needs {:.0} px high, has {:.0} (lines cut off)",
                    v.preferred, rect.h
                ));
            }
            // The box a text is laid out in is often larger than its letters; judge where the
            // letters are.
            let inked = Rect {
                w: rect.w.min(h.preferred),
                h: rect.h.min(v.preferred),
                ..rect
            };
            let inked = align(item, rect, inked);
            if place.scrolled && inked.intersect(&place.clip).is_none() {
                return ControlFlow::Continue(());
            }
            check_placement(&mut found, &what, inked, &place, whole);
            let control = control_ancestor(item);
            if let Some(control) = &control {
                // A row or button whose words spill out of it onto its neighbours.
                let frame = window_rect(control);
                if inked.sticks_out_of(&frame) {
                    found.push(format!(
                        "{what}: {inked} spills out of its {:?} ({frame})",
                        control.accessible_role()
                    ));
                }
            } else if let Some(inked) = inked.intersect(&place.clip) {
                leaves.push(Leaf {
                    item: item.clone(),
                    rect: inked,
                    what,
                    layer,
                });
            }
        }
        ControlFlow::Continue(())
    });

    // Only the topmost full-window layer (an overlay such as the manager area) and what lies
    // above it can be seen.
    let first_seen = tops
        .iter()
        .rposition(|t| !window_rect(t).sticks_out_of(&whole) && covers(&window_rect(t), &whole))
        .unwrap_or(0);
    let seen: Vec<&Leaf> = leaves.iter().filter(|l| l.layer >= first_seen).collect();
    for (i, a) in seen.iter().enumerate() {
        for b in &seen[i + 1..] {
            if is_ancestor(&a.item, &b.item) || is_ancestor(&b.item, &a.item) {
                continue;
            }
            if let Some(overlap) = a.rect.intersect(&b.rect) {
                found.push(format!(
                    "{} at {} and {} at {} overlap by {}",
                    a.what, a.rect, b.what, b.rect, overlap
                ));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

fn covers(r: &Rect, whole: &Rect) -> bool {
    r.x <= whole.x + SLACK
        && r.y <= whole.y + SLACK
        && r.right() >= whole.right() - SLACK
        && r.bottom() >= whole.bottom() - SLACK
}

/// Where the letters of a text sit inside its box, by its alignment.
fn align(item: &ItemRc, rect: Rect, inked: Rect) -> Rect {
    use i_slint_core::items::{TextHorizontalAlignment as H, TextVerticalAlignment as V};
    let (ha, va) = if let Some(t) = item.downcast::<SimpleText>() {
        let t = t.as_pin_ref();
        (t.horizontal_alignment(), t.vertical_alignment())
    } else if let Some(t) = item.downcast::<ComplexText>() {
        let t = t.as_pin_ref();
        (t.horizontal_alignment(), t.vertical_alignment())
    } else {
        return inked;
    };
    let x = match ha {
        H::Center => rect.x + (rect.w - inked.w) / 2.0,
        H::Right => rect.right() - inked.w,
        _ => rect.x,
    };
    let y = match va {
        V::Center => rect.y + (rect.h - inked.h) / 2.0,
        V::Bottom => rect.bottom() - inked.h,
        _ => rect.y,
    };
    Rect { x, y, ..inked }
}

fn check_placement(
    found: &mut Vec<String>,
    what: &str,
    rect: Rect,
    place: &Placement,
    whole: Rect,
) {
    if place.scrolled {
        // A list scrolls up and down, never sideways: a row cut at the side is cut.
        if rect.x < place.clip.x - SLACK || rect.right() > place.clip.right() + SLACK {
            found.push(format!(
                "{what}: {rect} is cut at the side of its list ({})",
                place.clip
            ));
        } else if let Some(view) = rect.intersect(&place.clip)
            && view.sticks_out_of(&whole)
        {
            found.push(format!("{what}: {view} is outside the window"));
        }
    } else if rect.sticks_out_of(&whole) {
        found.push(format!("{what}: {rect} is outside the window"));
    } else if rect.sticks_out_of(&place.clip) {
        found.push(format!(
            "{what}: {rect} is cut by its container ({})",
            place.clip
        ));
    }
}

/// Every text the window shows as laid out now: visible and not scrolled out of view. A text
/// under an overlay counts too: it is still a text of the screen.
pub fn texts(window: &slint::Window) -> Vec<String> {
    let (root, whole) = root_and_area(window);
    let mut out = Vec::new();
    root.visit_descendants(|item| {
        if let Some(place) = placement(item, whole)
            && window_rect(item).intersect(&place.clip).is_some()
            && let Some((text, _, _)) = text_of(item)
            && !text.trim().is_empty()
        {
            out.push(text);
        }
        ControlFlow::<()>::Continue(())
    });
    out
}

/// The colour, size and weight a text is drawn with.
fn text_look(item: &ItemRc) -> Option<(Color, f32, i32)> {
    if let Some(t) = item.downcast::<SimpleText>() {
        let t = t.as_pin_ref();
        return Some((t.color().color(), t.font_size().get(), t.font_weight()));
    }
    if let Some(t) = item.downcast::<ComplexText>() {
        let t = t.as_pin_ref();
        return Some((t.color().color(), t.font_size().get(), t.font_weight()));
    }
    None
}

/// What an item paints behind its children, if anything.
fn background_of(item: &ItemRc) -> Option<Brush> {
    if let Some(r) = item.downcast::<Rectangle>() {
        return Some(r.as_pin_ref().background());
    }
    if let Some(r) = item.downcast::<BasicBorderRectangle>() {
        return Some(r.as_pin_ref().background());
    }
    if let Some(r) = item.downcast::<BorderRectangle>() {
        return Some(r.as_pin_ref().background());
    }
    if let Some(w) = item.downcast::<WindowItem>() {
        return Some(w.as_pin_ref().background());
    }
    None
}

/// The colour behind a text: its ancestors' backgrounds from the window down, each laid over
/// the one before by its alpha.
fn backdrop(item: &ItemRc) -> (f32, f32, f32) {
    let mut chain = Vec::new();
    let mut cur = item.parent_item(ParentItemTraversalMode::FindAllParents);
    while let Some(a) = cur {
        if let Some(b) = background_of(&a) {
            chain.push(b.color());
        }
        cur = a.parent_item(ParentItemTraversalMode::FindAllParents);
    }
    let mut rgb = (1.0, 1.0, 1.0);
    for c in chain.iter().rev() {
        let a = f32::from(c.alpha()) / 255.0;
        let blend = |under: f32, over: u8| under * (1.0 - a) + f32::from(over) / 255.0 * a;
        rgb = (
            blend(rgb.0, c.red()),
            blend(rgb.1, c.green()),
            blend(rgb.2, c.blue()),
        );
    }
    rgb
}

/// WCAG 2's relative luminance of an sRGB colour with channels in 0..=1.
fn luminance((r, g, b): (f32, f32, f32)) -> f32 {
    let lin = |c: f32| {
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)
}

/// A text whose contrast with what is behind it is under WCAG 2.1 AA (4.5:1, or 3:1 for large
/// text: 24 px, or 18.66 px bold). Text on a disabled control is exempt, as WCAG has it.
fn contrast_problem(item: &ItemRc) -> Option<String> {
    if let Some(control) = control_ancestor(item)
        && control
            .accessible_string_property(AccessibleStringProperty::Enabled)
            .is_some_and(|e| e == "false")
    {
        return None;
    }
    let (color, size, weight) = text_look(item)?;
    if color.alpha() == 0 {
        return None;
    }
    let ink = (
        f32::from(color.red()) / 255.0,
        f32::from(color.green()) / 255.0,
        f32::from(color.blue()) / 255.0,
    );
    let (a, b) = (luminance(ink), luminance(backdrop(item)));
    let ratio = (a.max(b) + 0.05) / (a.min(b) + 0.05);
    let large = size >= 24.0 || (size >= 18.66 && weight >= 700);
    let needed = if large { 3.0 } else { 4.5 };
    (ratio + 0.005 < needed)
        .then(|| format!("contrast {ratio:.2}:1 with its background, under WCAG AA's {needed}:1"))
}
