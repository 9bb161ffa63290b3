//! A private nginx mail proxy (packages `nginx-core libnginx-mod-mail`): IMAP on a free loopback
//! port, `auth_http` to a daemon's `/auth/nginx` with the shared secret, run in the foreground
//! as a child of `webproxy::NginxHttp` (own prefix, config and logs; stopped and reaped on drop).

use crate::free_port;
use crate::webproxy::NginxHttp;

pub struct Nginx {
    proxy: NginxHttp,
    pub imap_port: u16,
}

impl Nginx {
    /// `auth_http`: `host:port` of the daemon's HTTP listener; `key`: the `X-Auth-Key` value.
    pub fn start(auth_http: &str, key: &str) -> Nginx {
        let imap_port = free_port();
        let mail = format!(
            "mail {{\n\
               server_name mail.example.test;\n\
               auth_http {auth_http}/auth/nginx;\n\
               auth_http_header X-Auth-Key {key};\n\
               proxy_pass_error_message on;\n\
               server {{\n\
                 listen 127.0.0.1:{imap_port};\n\
                 protocol imap;\n\
                 imap_auth login plain;\n\
               }}\n\
             }}\n"
        );
        Nginx {
            proxy: NginxHttp::start_mail(&mail, &[imap_port]),
            imap_port,
        }
    }

    pub fn imap_addr(&self) -> String {
        format!("127.0.0.1:{}", self.imap_port)
    }

    pub fn error_log(&self) -> String {
        self.proxy.error_log()
    }
}
