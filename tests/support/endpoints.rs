//! What in-cluster clients would see of the API during an apply: the addresses of the
//! `default/kubernetes` Service, read every 0.3 s from its Endpoints and its EndpointSlice
//! as the admin (the admin kubeconfig's credentials and server), and the longest stretch in
//! which either held none once it had held one.
//!
//! A client inside the cluster reaches the API through that Service's IP; with no address
//! behind it, kube-proxy refuses the connection. The probers of `lane.rs` dial apiservers
//! directly and cannot see this.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use selfhosted_cluster::{ApiCredentials, TlsProbe};
use serde_json::Value;

/// How often the Service is read.
pub const EVERY: Duration = Duration::from_millis(300);

const ENDPOINTS: &str = "/api/v1/namespaces/default/endpoints/kubernetes";
const SLICE: &str = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes";
/// Before 1.21 (the v1.20.2 lane) EndpointSlices were `discovery.k8s.io/v1beta1`.
const SLICE_V1BETA1: &str = "/apis/discovery.k8s.io/v1beta1/namespaces/default/endpointslices/kubernetes";

/// One look: when, and how many addresses each object held (`None`: no answer, the API was
/// unreachable or answered an error other than "not found", which counts as no address).
#[derive(Debug, Clone, Copy)]
pub struct Look {
    pub at: Instant,
    pub endpoints: Option<usize>,
    pub slice: Option<usize>,
}

/// Reads the `kubernetes` Service every [`EVERY`] until finished.
pub struct EndpointsWatch {
    looks: Arc<Mutex<Vec<Look>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn addresses_in_endpoints(v: &Value) -> usize {
    v["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["addresses"].as_array().map_or(0, Vec::len))
        .sum()
}

/// Endpoints of the slice that are not marked not-ready (kube-proxy's view).
fn addresses_in_slice(v: &Value) -> usize {
    v["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["conditions"]["ready"] != Value::Bool(false))
        .map(|e| e["addresses"].as_array().map_or(0, Vec::len))
        .sum()
}

impl EndpointsWatch {
    /// Starts reading at `addr` (the admin kubeconfig's server: the first controller or the
    /// load balancer) with the admin credentials in `assets` (read once they exist: the
    /// assets appear when the assets resource is applied).
    pub fn start(assets: &Path, addr: &str) -> EndpointsWatch {
        let looks = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, st, assets, addr) = (looks.clone(), stop.clone(), assets.to_owned(), addr.to_owned());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut probe: Option<TlsProbe> = None;
            while !st.load(Ordering::Relaxed) {
                let started = Instant::now();
                if probe.is_none() {
                    let read = |p: &str| std::fs::read_to_string(assets.join(p)).ok();
                    if let (Some(ca), Some(cert), Some(key)) =
                        (read("tls/ca.crt"), read("tls/admin.crt"), read("tls/admin.key"))
                    {
                        let creds = ApiCredentials {
                            ca_pem: ca,
                            client_cert_pem: cert,
                            client_key_pem: key,
                        };
                        probe = TlsProbe::new(&creds, &addr, 6443, "kubernetes").ok();
                    }
                }
                if let Some(p) = &probe {
                    let count = |path: &str, count: fn(&Value) -> usize| -> Option<usize> {
                        let answer =
                            rt.block_on(async { tokio::time::timeout(Duration::from_secs(2), p.get(path)).await });
                        match answer {
                            Ok(Ok(a)) if a.status == 200 => {
                                serde_json::from_str::<Value>(&a.body).ok().map(|v| count(&v))
                            }
                            // The object does not exist (yet): its name in a NotFound Status.
                            // (An API version that is not served is a 404 without it: no answer.)
                            Ok(Ok(a))
                                if a.status == 404
                                    && a.body.contains("\"reason\":\"NotFound\"")
                                    && a.body.contains("\"name\":\"kubernetes\"") =>
                            {
                                Some(0)
                            }
                            _ => None,
                        }
                    };
                    let endpoints = count(ENDPOINTS, addresses_in_endpoints);
                    // discovery.k8s.io/v1 from 1.21; the v1.20 lane serves v1beta1 only.
                    let slice = count(SLICE, addresses_in_slice).or_else(|| count(SLICE_V1BETA1, addresses_in_slice));
                    l.lock().unwrap().push(Look {
                        at: Instant::now(),
                        endpoints,
                        slice,
                    });
                }
                std::thread::sleep(EVERY.saturating_sub(started.elapsed()));
            }
        });
        EndpointsWatch {
            looks,
            stop,
            thread: Some(thread),
        }
    }

    /// Stops reading; what was seen.
    pub fn finish(mut self) -> EndpointsReport {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        EndpointsReport::of(std::mem::take(&mut *self.looks.lock().unwrap()))
    }
}

/// The longest stretch with no address, of one object.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Empty {
    /// Looks that answered "no address" after the first address was seen.
    pub looks: usize,
    /// From the first look of the longest stretch with no address to the next look with one
    /// (or to its last look, if none came): an upper bound within [`EVERY`].
    pub longest: Duration,
}

/// What an [`EndpointsWatch`] saw.
#[derive(Debug, Clone)]
pub struct EndpointsReport {
    pub looks: Vec<Look>,
    pub endpoints: Empty,
    pub slice: Empty,
}

/// Empty stretches in `counts` after the first non-empty one. Looks without an answer neither
/// start nor end a stretch (the API was unreachable: nothing is known of the list).
fn empty_stretches(looks: &[Look], count: impl Fn(&Look) -> Option<usize>) -> Empty {
    let mut out = Empty::default();
    let mut seen_address = false;
    let mut since: Option<Instant> = None;
    let mut last_empty: Option<Instant> = None;
    for look in looks {
        match count(look) {
            None => {}
            Some(0) if seen_address => {
                out.looks += 1;
                since.get_or_insert(look.at);
                last_empty = Some(look.at);
            }
            Some(0) => {}
            Some(_) => {
                seen_address = true;
                if let Some(start) = since.take() {
                    out.longest = out.longest.max(look.at - start);
                }
            }
        }
    }
    if let (Some(start), Some(end)) = (since, last_empty) {
        out.longest = out.longest.max((end - start).max(EVERY));
    }
    out
}

impl EndpointsReport {
    fn of(looks: Vec<Look>) -> Self {
        EndpointsReport {
            endpoints: empty_stretches(&looks, |l| l.endpoints),
            slice: empty_stretches(&looks, |l| l.slice),
            looks,
        }
    }

    /// Looks that had an answer for the Endpoints.
    pub fn answered(&self) -> usize {
        self.looks.iter().filter(|l| l.endpoints.is_some()).count()
    }

    /// Whether any look found an address, in the Endpoints and in the EndpointSlice.
    pub fn saw_an_address(&self) -> bool {
        self.looks.iter().any(|l| l.endpoints.unwrap_or(0) > 0) && self.looks.iter().any(|l| l.slice.unwrap_or(0) > 0)
    }

    /// The fewest addresses any answered look found after the first address (Endpoints).
    pub fn fewest(&self) -> Option<usize> {
        let first = self.looks.iter().position(|l| l.endpoints.unwrap_or(0) > 0)?;
        self.looks[first..].iter().filter_map(|l| l.endpoints).min()
    }

    /// One line for the test's output: `what: kubernetes Endpoints …`.
    pub fn line(&self, what: &str) -> String {
        format!(
            "{what}: kubernetes Endpoints read {} times every {EVERY:?} ({} answered): longest stretch with no address {:?} ({} empty looks), EndpointSlice {:?} ({} empty looks); fewest addresses after the first {:?}",
            self.looks.len(),
            self.answered(),
            self.endpoints.longest,
            self.endpoints.looks,
            self.slice.longest,
            self.slice.looks,
            self.fewest()
        )
    }

    /// Prints [`EndpointsReport::line`] and asserts that no stretch with no address, in
    /// either object, lasted longer than `at_most` once the Service had an address. For hand-overs
    /// on one controller, where the provider's keeper writes an emptied list back within a
    /// look or two of its own (a read every [`EVERY`] here may still catch one moment).
    pub fn assert_empty_at_most(&self, what: &str, at_most: Duration) {
        eprintln!("{}", self.line(what));
        assert!(
            self.saw_an_address(),
            "{what}: the Service was read with an address: {}",
            self.line(what)
        );
        assert!(
            self.endpoints.longest <= at_most && self.slice.longest <= at_most,
            "{what}: the kubernetes Service is never empty for longer than {at_most:?}: {}",
            self.line(what)
        );
    }

    /// Prints [`EndpointsReport::line`] and asserts the Service never lost every address
    /// once it had one (neither object), and that the reads saw an address at all.
    pub fn assert_never_empty(&self, what: &str) {
        eprintln!("{}", self.line(what));
        assert!(
            self.saw_an_address(),
            "{what}: the kubernetes Endpoints and EndpointSlice were read with an address at least once: {}",
            self.line(what)
        );
        assert_eq!(
            (self.endpoints.looks, self.slice.looks),
            (0, 0),
            "{what}: the kubernetes Service never loses every address: {}",
            self.line(what)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_empty_stretch_starts_after_the_first_address_and_skips_silence() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let look = |ms, n: Option<usize>| Look {
            at: at(ms),
            endpoints: n,
            slice: n,
        };
        let looks = vec![
            look(0, Some(0)), // before the first address: not counted
            look(300, None),
            look(600, Some(1)),
            look(900, Some(0)),
            look(1200, None), // silence inside an empty stretch keeps it going
            look(1500, Some(0)),
            look(1800, Some(1)),
            look(2100, Some(0)),
            look(2400, Some(2)),
        ];
        let r = EndpointsReport::of(looks);
        assert_eq!(r.endpoints.looks, 3);
        assert_eq!(r.endpoints.longest, Duration::from_millis(900));
        assert_eq!(r.fewest(), Some(0));
        let never = EndpointsReport::of(vec![look(0, None), look(300, Some(1)), look(600, Some(3))]);
        assert_eq!(never.endpoints, Empty::default());
        assert!(never.saw_an_address());
    }
}
