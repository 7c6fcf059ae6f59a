//! `selfhosted-agent`: the command the rendered pods run. See the library for what each
//! subcommand does.

use std::net::IpAddr;
use std::process::ExitCode;

use selfhosted_agent::gate::{self, GateParams};

const USAGE: &str = "usage: selfhosted-agent gate --port PORT [--address BIND_ADDRESS]

gate  attach the reuseport gate to the apiservers' shared port: until the oldest apiserver
      leaves, it takes every connection except those to the loopback address, which reach the
      newest. Never fails the pod: when the gate cannot be attached it says why and exits 0.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args) {
        Ok(params) => {
            match gate::attach(&params) {
                Ok(attached) => println!("selfhosted-agent: {attached}"),
                // An apiserver without the gate still starts; it may then take connections early.
                Err(e) => println!("selfhosted-agent: gate not attached: {e}"),
            }
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("selfhosted-agent: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn parse(args: &[String]) -> Result<GateParams, String> {
    let (command, rest) = args.split_first().ok_or("no command given")?;
    if command != "gate" {
        return Err(format!("unknown command {command:?}"));
    }
    let mut port = None;
    let mut address = None;
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => port = Some(value.parse::<u16>().map_err(|e| format!("--port {value:?}: {e}"))?),
            "--address" => {
                let ip: IpAddr = value.parse().map_err(|e| format!("--address {value:?}: {e}"))?;
                // The apiserver's default wildcard is a dual-stack listener; so is the gate's.
                address = (!ip.is_unspecified()).then_some(ip);
            }
            _ => return Err(format!("unknown flag {flag:?}")),
        }
    }
    Ok(GateParams {
        port: port.ok_or("--port is required")?,
        address,
    })
}
