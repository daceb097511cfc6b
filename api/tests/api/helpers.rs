//! `TestApp`: the real api wired to a fresh database and a Patreon mock, plus the browser steps
//! of signing in.

use std::{collections::HashMap, sync::Arc};

use api::startup::Application;
use domain::infra::config::Settings;
use patreon_mock::{MockConfig, MockPatreon, MockUser};
use reqwest::{Response, StatusCode, header};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
pub use test_support::{Backend, TestDb, on_both_backends, postgres_enabled};

pub const CAMPAIGN_ID: &str = "1234560";
pub const JWT_SECRET: &str = "test-secret-that-is-long-enough-0123456789";
pub const ENCRYPTION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes
pub const FRONTEND: &str = "https://app.example.com";

/// Extra configuration for one test.
#[derive(Clone, Default)]
pub struct Options {
    pub vars: Vec<(&'static str, String)>,
}

impl Options {
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.vars.push((name, value.into()));
        self
    }
}

pub struct TestApp {
    pub address: String,
    pub mock: MockPatreon,
    pub db: DatabaseConnection,
    pub client: reqwest::Client,
    pub settings: Arc<Settings>,
    /// Dropped with the app: removes the SQLite file or drops the PostgreSQL database.
    _test_db: TestDb,
    /// The embedded job queue's file (used when the app has no Redis).
    _queue_db: TestDb,
}

/// A browser after signing in: its cookies and where it landed.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub jwt: String,
    pub refresh_cookie: String,
    pub location: String,
    pub set_cookies: Vec<String>,
}

impl SignedIn {
    pub fn handoff(&self) -> String {
        query_param(&self.location, "handoff").expect("handoff in landing URL")
    }
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The value of cookie `name` among `Set-Cookie` headers.
pub fn cookie_value(set_cookies: &[String], name: &str) -> Option<String> {
    set_cookies.iter().find_map(|c| {
        let first = c.split(';').next()?;
        let (k, v) = first.split_once('=')?;
        (k.trim() == name).then(|| v.trim().to_owned())
    })
}

/// An attribute of a `Set-Cookie` line (`None` when absent, `Some("")` for flags).
pub fn cookie_attribute(set_cookie: &str, name: &str) -> Option<String> {
    set_cookie.split(';').skip(1).find_map(|part| {
        let part = part.trim();
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

pub fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect()
}

pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, Options::default()).await
    }

    /// `None` (and a note) when PostgreSQL tests are not switched on.
    pub async fn spawn_if_postgres_with(options: Options) -> Option<TestApp> {
        if !postgres_enabled() {
            return None;
        }
        Some(Self::spawn_with(Backend::Postgres, options).await)
    }

    pub async fn spawn_with(backend: Backend, options: Options) -> TestApp {
        Self::try_spawn_with(backend, options)
            .await
            .expect("build the api")
    }

    /// Like `spawn_with`, but returns the start-up error instead of panicking.
    pub async fn try_spawn_with(backend: Backend, options: Options) -> Result<TestApp, String> {
        crate::logs::capture();
        let mock = MockPatreon::start(MockConfig {
            campaign_id: CAMPAIGN_ID.into(),
            ..MockConfig::default()
        })
        .await
        .expect("start the Patreon mock");
        let test_db = TestDb::create(backend).await;
        let queue_db = TestDb::create(Backend::Sqlite).await;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
        let port = listener.local_addr().expect("local addr").port();
        let mut vars: HashMap<&str, String> = HashMap::from([
            ("DATABASE_URL", test_db.url.clone()),
            ("QUEUE_SQLITE_URL", queue_db.url.clone()),
            ("JWT_SECRET", JWT_SECRET.into()),
            ("TOKEN_ENCRYPTION_KEY", ENCRYPTION_KEY.into()),
            ("PATREON_CLIENT_ID", "mock-client-id".into()),
            ("PATREON_CLIENT_SECRET", "mock-client-secret".into()),
            (
                "PATREON_REDIRECT_URI",
                format!("http://127.0.0.1:{port}/api/auth/patreon/callback"),
            ),
            ("PATREON_CAMPAIGN_ID", CAMPAIGN_ID.into()),
            ("PATREON_BASE_URL", mock.base_url()),
            ("PATREON_TIMEOUT_SECS", "2".into()),
            ("FRONTEND_URL", format!("{FRONTEND}/")),
            ("COOKIE_SECURE", "true".into()),
            ("API_DOCS", "true".into()),
            ("AUTH_RATE_LIMIT_PER_MINUTE", "1000".into()),
        ]);
        for (k, v) in options.vars {
            vars.insert(k, v);
        }
        let settings =
            Settings::from_lookup(|k| vars.get(k).cloned()).expect("test settings are valid");
        let app = Application::build(settings, Some(listener))
            .await
            .map_err(|e| format!("{e:#}"))?;
        let state = app.state().clone();
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Ok(TestApp {
            address: format!("http://127.0.0.1:{port}"),
            mock,
            db: state.db.clone(),
            client,
            settings: state.settings.clone(),
            _test_db: test_db,
            _queue_db: queue_db,
        })
    }

    /// The database this app runs on, for a second app process sharing it.
    pub fn database_url(&self) -> String {
        self._test_db.url.clone()
    }

    /// This app's embedded queue, for a second process sharing it.
    pub fn queue_url(&self) -> String {
        self._queue_db.url.clone()
    }

    /// Runs a worker process's job loop in this test, on the app's queue and database.
    pub async fn start_worker(&self) {
        let redis = match &self.settings.redis_url {
            Some(url) => Some(
                domain::infra::redis::connect(url)
                    .await
                    .expect("worker reaches Redis"),
            ),
            None => None,
        };
        let queue = domain::work::jobs::JobQueue::open(&self.settings, redis.as_ref())
            .await
            .expect("worker opens the queue");
        let ctx = worker::WorkerCtx {
            db: self.db.clone(),
            queue: queue.clone(),
            patreon: domain::patreon::client_for(
                &self.settings.patreon,
                redis.as_ref(),
                &self.settings.redis_key_prefix,
                Some(&self.db),
            )
            .unwrap(),
            settings: self.settings.clone(),
        };
        tokio::spawn(worker::startup::run(ctx, queue, std::future::pending()));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn add_user(&self, user: MockUser) -> String {
        let id = user.id.clone();
        self.mock.upsert_user(user);
        id
    }

    pub fn active_patron(&self, id: &str) -> String {
        self.add_user(MockUser::active_patron(id, CAMPAIGN_ID))
    }

    /// Step 1: our login redirect. Returns (authorize URL, state cookie pair `name=value`).
    pub async fn start_login(&self, return_to: Option<&str>) -> (String, String) {
        let mut url = reqwest::Url::parse(&self.url("/api/auth/patreon/login")).unwrap();
        if let Some(r) = return_to {
            url.query_pairs_mut().append_pair("return_to", r);
        }
        let response = self.client.get(url).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FOUND,
            "login should redirect"
        );
        let cookies = set_cookies(&response);
        let state_cookie = cookies
            .iter()
            .find(|c| c.contains("oauth_state="))
            .expect("state cookie")
            .clone();
        let pair = state_cookie.split(';').next().unwrap().to_owned();
        (location(&response), pair)
    }

    /// Step 2: Patreon's consent as `user_id`. Returns our callback URL with `code` and `state`.
    pub async fn consent(&self, authorize_url: &str, user_id: &str) -> String {
        let response = self
            .client
            .get(format!("{authorize_url}&as={user_id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FOUND,
            "mock consent should redirect"
        );
        location(&response)
    }

    /// Step 3: the callback, with the browser's state cookie.
    pub async fn callback(&self, callback_url: &str, state_cookie: &str) -> Response {
        self.client
            .get(callback_url)
            .header(header::COOKIE, state_cookie)
            .send()
            .await
            .unwrap()
    }

    /// The whole browser flow for `user_id`, asserting success.
    pub async fn sign_in(&self, user_id: &str) -> SignedIn {
        let (authorize, state_cookie) = self.start_login(None).await;
        let callback = self.consent(&authorize, user_id).await;
        let response = self.callback(&callback, &state_cookie).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = location(&response);
        assert_eq!(
            query_param(&location, "auth").as_deref(),
            Some("success"),
            "landing: {location}"
        );
        let cookies = set_cookies(&response);
        SignedIn {
            jwt: cookie_value(&cookies, "auth_token").expect("auth_token cookie"),
            refresh_cookie: cookie_value(&cookies, "auth_refresh").expect("auth_refresh cookie"),
            location,
            set_cookies: cookies,
        }
    }

    pub async fn me_bearer(&self, jwt: &str) -> Response {
        self.client
            .get(self.url("/api/auth/me"))
            .bearer_auth(jwt)
            .send()
            .await
            .unwrap()
    }

    pub async fn me_cookie(&self, jwt: &str) -> Response {
        self.client
            .get(self.url("/api/auth/me"))
            .header(header::COOKIE, format!("auth_token={jwt}"))
            .send()
            .await
            .unwrap()
    }

    /// A POST as the browser's own frontend would send it with cookies.
    pub fn same_site_post(&self, path: &str, cookies: &str) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(path))
            .header(header::COOKIE, cookies)
            .header(header::ORIGIN, FRONTEND)
            .header("X-Requested-With", "fetch")
    }

    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        let row = self
            .db
            .query_one_raw(Statement::from_string(self.db.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }
}
