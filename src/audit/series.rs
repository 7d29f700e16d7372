//! Bounded chart series: keep every `stride`-th point and double the stride whenever the series
//! would exceed its cap, so a series over a whole weekend stays at most `cap` points (plus the
//! latest one, so the chart always ends at the final value).

use super::model::Point;

#[derive(Clone, Debug)]
pub struct Downsampler {
    cap: usize,
    stride: u64,
    seen: u64,
    points: Vec<Point>,
    last: Option<Point>,
}

impl Downsampler {
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(2),
            stride: 1,
            seen: 0,
            points: Vec::new(),
            last: None,
        }
    }

    pub fn push(&mut self, p: Point) {
        if self.seen % self.stride == 0 {
            self.points.push(p);
            if self.points.len() >= self.cap {
                let mut i = 0;
                self.points.retain(|_| {
                    i += 1;
                    i % 2 == 1
                });
                self.stride *= 2;
            }
        }
        self.seen += 1;
        self.last = Some(p);
    }

    /// The kept points, oldest first, ending with the latest point pushed.
    pub fn points(&self) -> Vec<Point> {
        let mut out = self.points.clone();
        if let Some(l) = self.last
            && out.last() != Some(&l)
        {
            out.push(l);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_bounded_keeps_first_and_last_in_order() {
        let mut d = Downsampler::new(10);
        for i in 0..1_000u64 {
            d.push(Point {
                t_ms: i,
                value: i64::try_from(i).unwrap(),
            });
        }
        let p = d.points();
        assert!(p.len() <= 11, "{}", p.len());
        assert_eq!(p.first().unwrap().t_ms, 0);
        assert_eq!(p.last().unwrap().t_ms, 999);
        assert!(p.windows(2).all(|w| w[0].t_ms < w[1].t_ms));
    }
}
