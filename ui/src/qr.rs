//! The payment QR code as pixels: black modules on white, with the 4-module quiet zone scanners
//! need, scaled by a whole number so that every module is a crisp square.

use qrcode::canvas::{Canvas, MaskPattern};
use qrcode::{Color, EcLevel};
use slint::{Rgb8Pixel, SharedPixelBuffer};

/// Light modules around the code, as ISO/IEC 18004 asks for.
pub const QUIET_ZONE_MODULES: u32 = 4;

/// Pixels per module in the image handed to Slint. One: the payment screen scales the image by
/// a whole number of screen pixels with pixelated rendering, so a bigger buffer would only cost
/// time to fill and upload (36 times the pixels at 6 per module) and look the same.
pub const PIXELS_PER_MODULE: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QrError {
    #[error("the payment link is too long for a QR code ({0} bytes)")]
    TooLong(usize),
    #[error("cannot make a QR code of the payment link: {0}")]
    Encode(String),
}

/// The error correction the till uses: level M survives a scratched or glare-hit screen.
const EC_LEVEL: EcLevel = EcLevel::M;

/// The eight mask patterns of a (non-micro) QR code; the encoder may use any of them.
const MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

fn encode_error(url: &str, e: qrcode::types::QrError) -> QrError {
    match e {
        qrcode::types::QrError::DataTooLong => QrError::TooLong(url.len()),
        other => QrError::Encode(other.to_string()),
    }
}

/// Encodes `url` as a QR code: `(modules per side, dark or not per module, row by row)`.
///
/// Does what `QrCode::new` does, except for choosing the mask: qrcode's own choice scores the
/// eight masks with a penalty walk that took 1.3–1.7 ms of the 2 ms budget for a payment link;
/// `penalty` scores them by the same ISO/IEC 18004 rules in about 0.15 ms (all eight).
fn encode(url: &str) -> Result<(usize, Vec<bool>), QrError> {
    let bits =
        qrcode::bits::encode_auto(url.as_bytes(), EC_LEVEL).map_err(|e| encode_error(url, e))?;
    let version = bits.version();
    let data = bits.into_bytes();
    let (data, ec) = qrcode::ec::construct_codewords(&data, version, EC_LEVEL)
        .map_err(|e| encode_error(url, e))?;
    let width = usize::try_from(version.width()).map_err(|e| QrError::Encode(e.to_string()))?;
    let mut canvas = Canvas::new(version, EC_LEVEL);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&data, &ec);
    let masked = MASKS.iter().map(|&mask| {
        let mut c = canvas.clone();
        c.apply_mask(mask);
        let dark: Vec<bool> = c
            .into_colors()
            .into_iter()
            .map(|m| m == Color::Dark)
            .collect();
        dark
    });
    let mut best: Option<(u32, Vec<bool>)> = None;
    for dark in masked {
        let score = penalty(&dark, width);
        if best.as_ref().is_none_or(|(b, _)| score < *b) {
            best = Some((score, dark));
        }
    }
    best.map(|(_, dark)| (width, dark))
        .ok_or_else(|| QrError::Encode("no mask pattern".into()))
}

/// The ISO/IEC 18004 mask penalty (rules N1–N4) of a square of modules; lower scans better.
/// Written without data-dependent branches: on a QR code's noise-like modules every branch
/// would be mispredicted half the time, which made a first, plainer version 10 times slower.
fn penalty(dark: &[bool], n: usize) -> u32 {
    let mut columns = vec![false; dark.len()];
    for (y, row) in dark.chunks_exact(n).enumerate() {
        for (x, &m) in row.iter().enumerate() {
            columns[x * n + y] = m;
        }
    }
    let mut score = 0u32;
    for line in dark.chunks_exact(n).chain(columns.chunks_exact(n)) {
        score += line_penalty(line);
    }
    // N2: every 2×2 block of one colour.
    for (upper, lower) in dark.chunks_exact(n).zip(dark.chunks_exact(n).skip(1)) {
        for x in 0..n - 1 {
            let m = upper[x];
            let same = (upper[x + 1] == m) & (lower[x] == m) & (lower[x + 1] == m);
            score += 3 * u32::from(same);
        }
    }
    // N4: how far the share of dark modules is from half, in steps of 5 %.
    let dark_count = dark.iter().map(|&d| usize::from(d)).sum::<usize>();
    let percent = dark_count * 100 / dark.len().max(1);
    score + 10 * (percent.abs_diff(50) / 5) as u32
}

/// N1 and N3 along one row or column.
fn line_penalty(line: &[bool]) -> u32 {
    // The last 11 modules, oldest in the top bit: dark-light-dark×3-light-dark then four light
    // (10111010000), or the same after four light (00001011101).
    const FINDER_A: u16 = 0b101_1101_0000;
    const FINDER_B: u16 = 0b000_0101_1101;
    let (mut score, mut run, mut window) = (0u32, 0u32, 0u16);
    let mut last = !line.first().copied().unwrap_or(false);
    for (j, &m) in line.iter().enumerate() {
        // N1: a run of five scores 3, each module more 1.
        run = if m == last { run + 1 } else { 1 };
        last = m;
        score += 3 * u32::from(run == 5) + u32::from(run > 5);
        // N3: a finder-like pattern, 40 each.
        window = ((window << 1) | u16::from(m)) & 0x7ff;
        score += 40 * u32::from(j >= 10 && (window == FINDER_A || window == FINDER_B));
    }
    score
}

/// Encodes `url` and draws it `pixels_per_module` pixels per module. The buffer is `Send`, so
/// it can be made on any thread; the `slint::Image` must be made on the UI thread.
pub fn payment_qr(
    url: &str,
    pixels_per_module: u32,
) -> Result<SharedPixelBuffer<Rgb8Pixel>, QrError> {
    let (width, dark) = encode(url)?;
    let modules = u32::try_from(width).map_err(|e| QrError::Encode(e.to_string()))?;
    let scale = pixels_per_module.max(1);
    let side_modules = modules + 2 * QUIET_ZONE_MODULES;
    let side = side_modules * scale;
    let mut buffer = SharedPixelBuffer::<Rgb8Pixel>::new(side, side);
    let pixels = buffer.make_mut_slice();
    pixels.fill(Rgb8Pixel::new(255, 255, 255));
    let black = Rgb8Pixel::new(0, 0, 0);
    for (i, is_dark) in dark.iter().enumerate() {
        if !is_dark {
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
    fn every_payment_link_decodes_back_to_itself_whatever_mask_is_chosen() {
        for i in 0..64 {
            let url = format!("{URL}?n={i}");
            let buf = payment_qr(&url, 3).expect("a payment link fits in a QR code");
            let side = buf.width() as usize;
            let grey: Vec<u8> = buf.as_slice().iter().map(|p| p.r).collect();
            let mut img =
                rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| grey[y * side + x]);
            let grids = img.detect_grids();
            assert_eq!(grids.len(), 1, "one code in the image of {url}");
            let (_, content) = grids[0].decode().expect("the code decodes");
            assert_eq!(content, url);
        }
    }

    #[test]
    fn runs_of_five_or_more_and_finder_lookalikes_are_penalised() {
        let line = |s: &str| s.bytes().map(|b| b == b'1').collect::<Vec<bool>>();
        assert_eq!(line_penalty(&line("0101")), 0);
        assert_eq!(line_penalty(&line("11111")), 3);
        assert_eq!(line_penalty(&line("1111111010")), 5);
        assert_eq!(line_penalty(&line("10111010000")), 40);
        assert_eq!(line_penalty(&line("00001011101")), 40);
    }

    #[test]
    fn the_penalty_prefers_a_balanced_code() {
        let n = 21;
        let all_dark = vec![true; n * n];
        let checker: Vec<bool> = (0..n * n).map(|i| (i % n + i / n) % 2 == 0).collect();
        assert!(penalty(&checker, n) < penalty(&all_dark, n));
    }

    #[test]
    fn a_link_too_long_for_any_qr_code_is_refused_not_panicked_on() {
        let long = "x".repeat(8000);
        assert_eq!(payment_qr(&long, 2).err(), Some(QrError::TooLong(8000)));
    }
}
