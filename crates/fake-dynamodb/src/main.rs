//! `deployer-fake-dynamodb --table T --hash-key pk[:S|N|B] [--range-key sk[:TYPE]] [--port P]
//! [--write-rate WCU] [--provisioned-wcu WCU] [--unprocessed-every N] [--fail-every N]`:
//! serves the fake on loopback, prints `listening on http://127.0.0.1:PORT`, runs until killed.
//! `GET /stats` answers the counters as JSON.

use deployer_fake_dynamodb::{Config, KeyType};

fn key(spec: &str) -> (String, KeyType) {
    let (name, kind) = spec.split_once(':').unwrap_or((spec, "S"));
    let kind = match kind {
        "S" => KeyType::S,
        "N" => KeyType::N,
        "B" => KeyType::B,
        other => fail(&format!("key type {other}: expected S, N or B")),
    };
    (name.to_string(), kind)
}

fn fail(message: &str) -> ! {
    eprintln!("deployer-fake-dynamodb: {message}");
    std::process::exit(2)
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> T {
    value
        .parse()
        .unwrap_or_else(|_| fail(&format!("{flag} {value}: not a number")))
}

#[tokio::main]
async fn main() {
    let mut config = Config::new("table", "pk");
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--table" => config.table = value,
            "--hash-key" => config.hash_key = key(&value),
            "--range-key" => config.range_key = Some(key(&value)),
            "--port" => port = number(&flag, &value),
            "--write-rate" => config.write_rate = Some(number(&flag, &value)),
            "--provisioned-wcu" => config.provisioned_wcu = Some(number(&flag, &value)),
            "--unprocessed-every" => config.unprocessed_every = Some(number(&flag, &value)),
            "--fail-every" => config.fail_every = Some(number(&flag, &value)),
            other => fail(&format!("unknown flag {other}")),
        }
    }
    let fake = deployer_fake_dynamodb::start(config, port)
        .await
        .unwrap_or_else(|e| fail(&format!("cannot listen: {e}")));
    println!("listening on {}", fake.url());
    let _ = tokio::signal::ctrl_c().await;
}
