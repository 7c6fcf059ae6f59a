//! Full PKI render (every CA, certificate, key and kubeconfig from nothing),
//! ECDSA P-256 vs RSA-2048, plus a no-op re-render. Prints milliseconds.
//! Run: `cargo bench -p selfhosted-pki --bench render`.

use std::time::{Duration, Instant};

use selfhosted_pki::{issue, parse, KeyAlgorithm, RawParams};
use time::OffsetDateTime;

fn main() {
    let raw = RawParams {
        cluster_name: Some("bench".into()),
        api_servers: Some(vec!["api.bench.example".into(), "10.0.0.5".into()]),
        etcd_servers: Some(vec!["10.0.0.5".into(), "10.0.0.6".into(), "10.0.0.7".into()]),
        ..RawParams::default()
    };
    let base = match parse(&raw) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bad bench params: {e:?}");
            std::process::exit(1);
        }
    };
    let now = OffsetDateTime::now_utc();
    for (alg, runs) in [(KeyAlgorithm::EcdsaP256, 20), (KeyAlgorithm::Rsa2048, 5)] {
        let mut p = base.clone();
        p.key_algorithm = alg;
        let mut times: Vec<Duration> = Vec::new();
        let mut last = None;
        for _ in 0..runs {
            let t = Instant::now();
            last = Some(issue(&p, None, now).expect("render"));
            times.push(t.elapsed());
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "full PKI render {alg}: median {:.1} ms, min {:.1} ms, max {:.1} ms ({runs} runs)",
            ms(times[times.len() / 2]),
            ms(times[0]),
            ms(times[times.len() - 1])
        );
        if let Some(prior) = last {
            let t = Instant::now();
            let again = issue(&p, Some(&prior), now).expect("re-render");
            assert_eq!(again, prior);
            println!("no-op re-render {alg}: {:.2} ms", ms(t.elapsed()));
        }
    }
}
