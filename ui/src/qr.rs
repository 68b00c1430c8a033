//! The payment QR code as pixels: black modules on white, with the 4-module quiet zone scanners
//! need, scaled by a whole number so that every module is a crisp square.

use slint::{Rgb8Pixel, SharedPixelBuffer};

/// Light modules around the code, as ISO/IEC 18004 asks for.
pub const QUIET_ZONE_MODULES: u32 = 4;

/// Screen pixels per module in the image handed to Slint; the screen scales it further with
/// pixelated rendering, so this only needs to be large enough to stay sharp.
pub const PIXELS_PER_MODULE: u32 = 6;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    #[error("the payment link is too long for a QR code ({0} bytes)")]
    TooLong(usize),
    #[error("cannot make a QR code of the payment link: {0}")]
    Encode(String),
}

/// Encodes `url` and draws it `pixels_per_module` pixels per module. The buffer is `Send`, so
/// it can be made on any thread; the `slint::Image` must be made on the UI thread.
pub fn payment_qr(
    url: &str,
    pixels_per_module: u32,
) -> Result<SharedPixelBuffer<Rgb8Pixel>, QrError> {
    let code = qrcode::QrCode::new(url.as_bytes()).map_err(|e| match e {
        qrcode::types::QrError::DataTooLong => QrError::TooLong(url.len()),
        other => QrError::Encode(other.to_string()),
    })?;
    let modules = u32::try_from(code.width()).map_err(|e| QrError::Encode(e.to_string()))?;
    let colors = code.to_colors();
    let scale = pixels_per_module.max(1);
    let side_modules = modules + 2 * QUIET_ZONE_MODULES;
    let side = side_modules * scale;
    let mut buffer = SharedPixelBuffer::<Rgb8Pixel>::new(side, side);
    let pixels = buffer.make_mut_slice();
    pixels.fill(Rgb8Pixel::new(255, 255, 255));
    let black = Rgb8Pixel::new(0, 0, 0);
    for (i, color) in colors.iter().enumerate() {
        if *color != qrcode::Color::Dark {
            continue;
        }
        let i = i as u32;
        let (mx, my) = (
            i % modules + QUIET_ZONE_MODULES,
            i / modules + QUIET_ZONE_MODULES,
        );
        for py in my * scale..(my + 1) * scale {
            let row = (py * side) as usize;
            pixels[row + (mx * scale) as usize..row + ((mx + 1) * scale) as usize].fill(black);
        }
    }
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://pay.klarna.com/eu/requests/2b1f0c7e-8d4f-4f6e-9a57-0c3a1d2b7e11/qr";

    #[test]
    fn the_code_keeps_a_white_quiet_zone_of_four_modules() {
        let buf = payment_qr(URL, 3).expect("a payment link fits in a QR code");
        let side = buf.width();
        assert_eq!(buf.width(), buf.height());
        assert_eq!(side % 3, 0, "whole pixels per module");
        let px = buf.as_slice();
        let border = QUIET_ZONE_MODULES * 3;
        for y in 0..side {
            for x in 0..side {
                let in_quiet_zone =
                    x < border || y < border || x >= side - border || y >= side - border;
                if in_quiet_zone {
                    assert_eq!(px[(y * side + x) as usize], Rgb8Pixel::new(255, 255, 255));
                }
            }
        }
        // The finder pattern's top-left corner is dark, right inside the quiet zone.
        assert_eq!(
            px[(border * side + border) as usize],
            Rgb8Pixel::new(0, 0, 0)
        );
    }

    #[test]
    fn a_link_too_long_for_any_qr_code_is_refused_not_panicked_on() {
        let long = "x".repeat(8000);
        assert_eq!(payment_qr(&long, 2).err(), Some(QrError::TooLong(8000)));
    }
}
