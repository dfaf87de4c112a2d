//! The Lambda entry point: JSON logs, the DynamoDB client, and the ALB event loop.

use lambda_http::{Error, Request, service_fn};
use notes::App;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    notes::init_logging();
    let table = std::env::var("TABLE_NOTES")
        .map_err(|_| "TABLE_NOTES is not set: deployer sets it to the notes table's name")?;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    // Read once per cold start: a failure here is an init error, and Lambda retries the start.
    let parameter = std::env::var(notes::API_KEY_PARAMETER).ok();
    let ssm = aws_sdk_ssm::Client::new(&config);
    let api_key = notes::read_api_key(&ssm, parameter.as_deref()).await?;
    // Lives as long as the process: the runtime serves every invocation with it.
    let app: &'static App = Box::leak(Box::new(App {
        db: aws_sdk_dynamodb::Client::new(&config),
        table,
        api_key,
    }));
    lambda_http::run(service_fn(move |request: Request| async move {
        Ok::<_, std::convert::Infallible>(notes::handle(app, request).await)
    }))
    .await
}
