//! The Lambda entry point: JSON logs, the DynamoDB client, and the ALB event loop.

use lambda_http::{Error, Request, service_fn};
use notes::App;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    notes::init_logging();
    let table = std::env::var("TABLE_NOTES")
        .map_err(|_| "TABLE_NOTES is not set: deployer sets it to the notes table's name")?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    // Lives as long as the process: the runtime serves every invocation with it.
    let app: &'static App = Box::leak(Box::new(App {
        db: aws_sdk_dynamodb::Client::new(&config),
        table,
    }));
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(notes::handle(app, request).await)
    }))
    .await
}
