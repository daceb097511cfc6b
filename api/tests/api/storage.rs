//! What lands in the database: encrypted tokens (T36), reversible migrations, hostile input (T38).

use base64::Engine;
use domain::infra::crypto::{KeyId, TokenCipher, token_aad};
use migration::MigratorTrait;
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use secrecy::{ExposeSecret, SecretString};

use crate::helpers::*;

async fn raw_tokens(app: &TestApp, patreon_id: &str) -> (String, String) {
    let backend = app.db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            "SELECT access_token, refresh_token FROM users WHERE patreon_id = $1"
        }
        _ => "SELECT access_token, refresh_token FROM users WHERE patreon_id = ?",
    };
    let row = app
        .db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [patreon_id.into()],
        ))
        .await
        .unwrap()
        .unwrap();
    (
        row.try_get("", "access_token").unwrap(),
        row.try_get("", "refresh_token").unwrap(),
    )
}

on_both_backends! {
    setup = TestApp::spawn;

    async fn patreon_tokens_are_stored_encrypted_and_bound_to_their_row(app) {
        let a = app.active_patron("2101");
        let b = app.active_patron("2102");
        app.sign_in(&a).await;
        app.sign_in(&b).await;
        let (access, refresh) = raw_tokens(&app, &a).await;
        let cipher = &app.settings.token_cipher;
        for (stored, column) in [(&access, "access_token"), (&refresh, "refresh_token")] {
            assert!(stored.starts_with("v1:k1:"), "{stored}");
            let plain = cipher.decrypt(stored, &token_aad(&a, column)).unwrap();
            let plain = plain.expose_secret();
            assert!(plain.len() >= 32);
            for encoding in [plain.to_owned(), hex::encode(plain), base64::engine::general_purpose::STANDARD.encode(plain)] {
                assert!(!stored.contains(&encoding));
            }
            // The same ciphertext under B's row or the other column does not decrypt.
            assert!(cipher.decrypt(stored, &token_aad(&b, column)).is_err());
        }
        assert!(cipher.decrypt(&access, &token_aad(&a, "refresh_token")).is_err());
        let (access_b, _) = raw_tokens(&app, &b).await;
        assert_ne!(access, access_b);
    }

    async fn rotating_the_key_reencrypts_every_row(app) {
        for id in ["2201", "2202", "2203"] {
            app.active_patron(id);
            app.sign_in(id).await;
        }
        let new_key = SecretString::from(base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
        let old = vec![(KeyId::parse("k1").unwrap(), SecretString::from(ENCRYPTION_KEY.to_owned()))];
        let rotated = TokenCipher::new(KeyId::parse("k2").unwrap(), &new_key, old).unwrap();
        let report = domain::patreon::key_rotation::reencrypt_all(&app.db, &rotated).await.unwrap();
        assert_eq!(report.reencrypted, 3);
        for id in ["2201", "2202", "2203"] {
            let (access, refresh) = raw_tokens(&app, id).await;
            assert!(access.starts_with("v1:k2:") && refresh.starts_with("v1:k2:"));
            assert!(rotated.decrypt(&access, &token_aad(id, "access_token")).is_ok());
        }
        let again = domain::patreon::key_rotation::reencrypt_all(&app.db, &rotated).await.unwrap();
        assert_eq!(again.reencrypted, 0);
    }

    async fn migrations_roll_all_the_way_down_and_up_again(app) {
        let id = app.active_patron("2301");
        app.sign_in(&id).await;
        migration::Migrator::down(&app.db, None).await.unwrap();
        let backend = app.db.get_database_backend();
        let gone = app.db.query_one_raw(Statement::from_string(backend, "SELECT COUNT(*) AS n FROM users")).await;
        assert!(gone.is_err(), "users table still exists after rolling back");
        migration::Migrator::up(&app.db, None).await.unwrap();
        assert_eq!(app.count("users").await, 0);
        assert_eq!(migration::Migrator::get_pending_migrations(&app.db).await.unwrap().len(), 0);
        // The service works on the re-created schema.
        app.sign_in(&id).await;
        assert_eq!(app.count("users").await, 1);
    }

    async fn hostile_input_gets_a_4xx_and_leaves_the_tables_intact(app) {
        let id = app.active_patron("2401");
        let signed_in = app.sign_in(&id).await;
        let hostile = ["1' OR '1'='1", "1; DROP TABLE users;--", "%00", "\u{202e}\u{1F600}", &"x".repeat(10_000)];
        for value in hostile {
            let mut login = reqwest::Url::parse(&app.url("/api/auth/patreon/login")).unwrap();
            login.query_pairs_mut().append_pair("return_to", value);
            assert_eq!(app.client.get(login).send().await.unwrap().status(), StatusCode::BAD_REQUEST);

            let mut callback = reqwest::Url::parse(&app.url("/api/auth/patreon/callback")).unwrap();
            callback.query_pairs_mut().append_pair("code", value).append_pair("state", value);
            let status = app.client.get(callback).send().await.unwrap().status();
            assert_eq!(status, StatusCode::BAD_REQUEST, "{value:.40}");

            let handoff = app.client.post(app.url("/api/auth/token")).json(&serde_json::json!({ "handoff": value })).send().await.unwrap();
            assert_eq!(handoff.status(), StatusCode::BAD_REQUEST, "{value:.40}");

            assert_eq!(app.me_bearer(value).await.status(), StatusCode::UNAUTHORIZED);
        }
        let array = app.client.post(app.url("/api/auth/token")).json(&serde_json::json!({ "handoff": ["a", "b"] })).send().await.unwrap();
        assert_eq!(array.status(), StatusCode::BAD_REQUEST);
        assert_eq!(app.count("users").await, 1);
        assert_eq!(entity::user::Entity::find().all(&app.db).await.unwrap()[0].patreon_id, id);
        assert_eq!(app.me_bearer(&signed_in.jwt).await.status(), StatusCode::OK);
    }
}
