//! Runs `ringsum bench` (the library behind it) over model sizes 10^4 to
//! 10^7 at 10 clients and over 10 to 1000 clients at 10^5 parameters,
//! prints the numbers as JSON lines, and draws the throughput of every
//! phase into docs/scaling-model-size.svg and docs/scaling-clients.svg.
//!
//! `cd benches/scaling && cargo run --release`

use plotters::prelude::*;
use ringsum_cli::bench::{Options, Report, run, to_json};

fn measure(params_count: usize, clients: usize) -> Report {
    let options = Options {
        params_count,
        clients,
        holders: 5,
        threshold: 3,
        params: "rk128-n16384".into(),
        repeats: 3,
        progress: false,
    };
    let report = run(&options).unwrap_or_else(|e| panic!("{params_count} x {clients}: {e}"));
    println!("{}", to_json(&report));
    report
}

/// Throughput in M parameters per second of plaintext, encrypt, aggregate,
/// and opening the sum (every holder's answer, then combining and
/// decoding).
fn rates(report: &Report) -> [f64; 4] {
    let rate = |p: &ringsum_cli::bench::Phase| p.parameters / p.median.as_secs_f64() / 1e6;
    let open = report.holders.median + report.decode.median;
    [
        rate(&report.plaintext),
        rate(&report.encrypt),
        rate(&report.aggregate),
        report.decode.parameters / open.as_secs_f64() / 1e6,
    ]
}

fn plot(path: &str, title: &str, x_label: &str, points: &[(f64, [f64; 4])]) {
    let root = SVGBackend::new(path, (760, 480)).into_drawing_area();
    root.fill(&WHITE).expect("fill");
    let (x0, x1) = (
        points.first().map_or(1.0, |p| p.0),
        points.last().map_or(10.0, |p| p.0),
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((x0..x1).log_scale(), (0.1f64..20_000.0).log_scale())
        .expect("chart");
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("M parameters per second (log)")
        .draw()
        .expect("mesh");
    let names = [
        "plaintext FedAvg",
        "encode + encrypt",
        "aggregate",
        "holders' answers + decode",
    ];
    let colours = [BLACK, RED, BLUE, GREEN];
    for (i, (name, colour)) in names.iter().zip(colours).enumerate() {
        let series: Vec<(f64, f64)> = points.iter().map(|(x, r)| (*x, r[i])).collect();
        chart
            .draw_series(LineSeries::new(series.clone(), colour.stroke_width(2)))
            .expect("line")
            .label(*name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart
            .draw_series(series.iter().map(|p| Circle::new(*p, 3, colour.filled())))
            .expect("points");
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .expect("legend");
    root.present().expect("write svg");
}

fn main() {
    let sizes: Vec<(f64, [f64; 4])> = [10_000, 100_000, 1_000_000, 10_000_000]
        .iter()
        .map(|&n| (n as f64, rates(&measure(n, 10))))
        .collect();
    plot(
        "../../docs/scaling-model-size.svg",
        "Throughput per phase, 10 clients (rk128-n16384, 2 cores)",
        "parameters per update (log)",
        &sizes,
    );
    let clients: Vec<(f64, [f64; 4])> = [10, 30, 100, 300, 1000]
        .iter()
        .map(|&c| (c as f64, rates(&measure(100_000, c))))
        .collect();
    plot(
        "../../docs/scaling-clients.svg",
        "Throughput per phase, 10^5 parameters (rk128-n16384, 2 cores)",
        "clients (log)",
        &clients,
    );
}
