//! ASCII-art thumbnails of grey-scale images, for printing MNIST digits in a terminal.

/// Intensity ramp from dark to bright.
const RAMP: &[u8] = b" .:-=+*#%@";

/// Renders the centre of a `side × side` image with values in `[0, 1]`:
/// `crop` pixels are dropped on every edge, and each character averages
/// `2 × 1` pixels (terminal cells are about twice as tall as wide), so a
/// 28 × 28 MNIST digit with `crop = 4` becomes 10 lines of 20 characters.
pub fn thumbnail(pixels: &[f32], side: usize, crop: usize) -> Vec<String> {
    let inner = side.saturating_sub(2 * crop);
    (0..inner / 2)
        .map(|r| {
            (0..inner)
                .map(|c| {
                    let at = |rr: usize| {
                        pixels
                            .get((crop + rr) * side + crop + c)
                            .copied()
                            .unwrap_or(0.0)
                    };
                    let v = ((at(2 * r) + at(2 * r + 1)) / 2.0).clamp(0.0, 1.0);
                    RAMP[((v * (RAMP.len() - 1) as f32).round()) as usize] as char
                })
                .collect()
        })
        .collect()
}

/// Places captioned blocks of lines side by side, `gap` spaces apart.
pub fn side_by_side(blocks: &[(String, Vec<String>)], gap: usize) -> String {
    let width = blocks
        .iter()
        .map(|(cap, lines)| {
            lines
                .iter()
                .map(|l| l.chars().count())
                .max()
                .unwrap_or(0)
                .max(cap.chars().count())
        })
        .collect::<Vec<_>>();
    let height = blocks.iter().map(|(_, l)| l.len()).max().unwrap_or(0);
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
    let mut out = String::new();
    let sep = " ".repeat(gap);
    let caps: Vec<String> = blocks
        .iter()
        .zip(&width)
        .map(|((c, _), &w)| pad(c, w))
        .collect();
    out.push_str(caps.join(&sep).trim_end());
    out.push('\n');
    for r in 0..height {
        let row: Vec<String> = blocks
            .iter()
            .zip(&width)
            .map(|((_, l), &w)| pad(l.get(r).map(String::as_str).unwrap_or(""), w))
            .collect();
        out.push_str(row.join(&sep).trim_end());
        out.push('\n');
    }
    out
}
