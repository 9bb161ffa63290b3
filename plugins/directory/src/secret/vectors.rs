//! Hash strings made by the real tools, pasted so the tools are not needed when the tests run.
//! Each entry is `scheme label | password | stored hash`, followed by the command that made it
//! (`doveadm` from dovecot-core, `mkpasswd` from whois, `htpasswd` from apache2-utils,
//! `slappasswd` from slapd + slapd-contrib, passlib from PyPI, Python's hashlib). Some
//! passwords are non-ASCII; all are UTF-8 bytes. slappasswd's `{SHA}`, `{SHA256}` and
//! `{SHA512}` of `secret` are byte-identical to doveadm's, so they appear once.

/// One fixed vector.
pub(super) struct Vector {
    pub label: &'static str,
    pub password: &'static str,
    pub hash: &'static str,
    pub command: &'static str,
}

pub(super) fn all() -> Vec<Vector> {
    let mut out: Vec<Vector> = Vec::new();
    for line in TABLE.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(command) = line.strip_prefix("  $ ") {
            out.last_mut().expect("command after an entry").command = command;
            continue;
        }
        let mut parts = line.split(" | ");
        let (Some(label), Some(password), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            panic!("bad vector line: {line}");
        };
        out.push(Vector {
            label,
            password,
            hash,
            command: "",
        });
    }
    out
}

const TABLE: &str = r##"
yescrypt | secret | $y$j9T$VWNrZCqVwfCqzK.npRfGD/$lYsBnrZovCHA53HfaukQ1LxG1zrq3mMt33LkoMQj3W7
  $ mkpasswd -m yescrypt secret
scrypt | secret | $7$CU..../....Nw9dbXuYpSKdj2RqUoc3d1$Gn4bVU7YMCcPoGnvjwwjLOmouJqibOrQXt0LVN9ueE4
  $ mkpasswd -m scrypt secret
bcrypt | secret | $2b$05$9HqvJJff88EJ2C4N4YrhRurtIKoVf0G/lAEN7y18zYBQvNOewjmUi
  $ mkpasswd -m bcrypt secret
bcrypt | secret | $2a$05$qYwKjNCt0szJCxdvDtjsYefyGw8DkcnyBUX7xSQjpFalpCp4BG/Va
  $ mkpasswd -m bcrypt-a secret
sha512-crypt | secret | $6$.sd2GmCv.fFbH/70$VUQTRyuBtt/dWi7PSl5pNpNxmUlMZtCqo4kjs5qO6vw/3hH4kDIGQIki4aBVaC7m7gtMihS5mHNuL6XqqwD0v1
  $ mkpasswd -m sha512crypt secret
sha256-crypt | secret | $5$6sNtIkF6GsGy1JoM$PDpQa7W.LHcpdYAL18WkJqVjOaxXuWXl3sskSJR5cT/
  $ mkpasswd -m sha256crypt secret
md5-crypt | secret | $1$Uxz3NrhH$s3JKOBTJn.6XUYH3oSwsf1
  $ mkpasswd -m md5crypt secret
sha512-crypt | pässwörd€ | $6$iE8esSZ.nlowTZXQ$5O431TqZBD3RH2lgoFL0jJI6LhvnEBytPgdeEibDonWOFqlMEVIBYzMyE11qmEGCSZ8dKkVl7xXroHJmDn8FQ1
  $ mkpasswd -m sha512crypt pässwörd€
yescrypt | pässwörd€ | $y$j9T$XyfBCFetUO34R/Uhm6ftQ1$xrFd1tDZKCuLOU1CDfEhaQix/CVJNFPsOKC/Vi7OY2.
  $ mkpasswd -m yescrypt pässwörd€
sha512-crypt | secret | $6$rounds=10000$q8NGjdLTNV.kn7nT$LhdC1iU1Z8i30g7XPcaFbsLA4q4XLcHXF83uysgP9ewzdSg.uIzZNyj6KSI14Tgh4snVqASdikaCjub1lNrIq1
  $ mkpasswd -m sha512crypt -R 10000 secret
sha256-crypt | secret | $5$rounds=7777$2lMoVO3Js6F7svKe$MitUjJzV4eifJutJqfyL3cCdcc5KJnB6ewTydwAqhm0
  $ mkpasswd -m sha256crypt -R 7777 secret
sha512-crypt | secret | $6$saltsaltsaltsalt$ph0yGsyjzqdeFaon7.gJZo8eAG5/rj9/JdzOu1Rl7dKzBYg3xgvl7T2VQ2Rt81bc5AXkdA54r0p8QvC1omD6R1
  $ mkpasswd -m sha512crypt -S saltsaltsaltsalt secret
sha512-crypt | secret | {SHA512-CRYPT}$6$Gvdhm3.yB5B.XPjt$8hADQ2aqJ46k7/AoTqpN4L6V9qITCGhaGHa1y6u/4ZnPslTc3YcLpTTAcCs.GY4p1JfbFQEqGeIijefG0iXLO1
  $ doveadm pw -s SHA512-CRYPT -p secret
sha256-crypt | secret | {SHA256-CRYPT}$5$kNLy.3hFahaWyqUj$cLkiCoXsCxfKKkhj9TOBoXpsWv5SB76FRjJMBud7MI/
  $ doveadm pw -s SHA256-CRYPT -p secret
md5-crypt | secret | {MD5-CRYPT}$1$8qDx5dNz$hPqJXAq3HH/n6yB1goC7y0
  $ doveadm pw -s MD5-CRYPT -p secret
bcrypt | secret | {BLF-CRYPT}$2y$05$efbOKGzzLkAtv5750H1JOeYHIRhX9dtrJfQQexFGN1UTCKtGlnHfi
  $ doveadm pw -s BLF-CRYPT -p secret
argon2 | secret | {ARGON2I}$argon2i$v=19$m=32768,t=4,p=1$3lRaNSKrTdUw2i48SlsQNA$71D24zTnsEOJbs/semh5akP6K4gsTqNiGH1+1A13Wa8
  $ doveadm pw -s ARGON2I -p secret
argon2 | secret | {ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$xmv4mNbAoNLqULooxaG+9A$KRlxNAYVIbWSRz6GnqM0i6uwjvBqE/TnIMLgbtGMN9s
  $ doveadm pw -s ARGON2ID -p secret
md5 | secret | {PLAIN-MD5}5ebe2294ecd0e0f08eab7690d2a6ee69
  $ doveadm pw -s PLAIN-MD5 -p secret
md5 | secret | {LDAP-MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==
  $ doveadm pw -s LDAP-MD5 -p secret
sha | secret | {SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=
  $ doveadm pw -s SHA -p secret
ssha | secret | {SSHA}vMyOBC7cExeKX6Z2PLcT4iHrk8NMYQCP
  $ doveadm pw -s SSHA -p secret
sha256 | secret | {SHA256}K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols=
  $ doveadm pw -s SHA256 -p secret
ssha256 | secret | {SSHA256}VkNnxLVKntN4lI+sEv0SMq402PLd9uT2EXgxNBAv4Pc4Qbt7
  $ doveadm pw -s SSHA256 -p secret
sha512 | secret | {SHA512}vSsar3708Jvp9Szi2NWZZ02Bqp1qRCFpbcTZPdBhnWgs5WtNZKnvCXdhztmeD2cmW192CF5bDufKRpayrW/isg==
  $ doveadm pw -s SHA512 -p secret
ssha512 | secret | {SSHA512}69KnoFdcMhG1VGx1gIfTh3r+53TQFnhkHWnRkLeQOzCkmwtO5/ZaoRGSSOhYoK3aoy4A5rbwoBxV4fbdPedA1+2UxMA=
  $ doveadm pw -s SSHA512 -p secret
pbkdf2 | secret | {PBKDF2}$1$79aoPoVdGLzwPnZ5$5000$28e2401cdd9667eb09738d890fefa1b1e0f5bcc3
  $ doveadm pw -s PBKDF2 -p secret
plain | secret | {PLAIN}secret
  $ doveadm pw -s PLAIN -p secret
plain | secret | {CLEAR}secret
  $ doveadm pw -s CLEAR -p secret
plain | secret | {CLEARTEXT}secret
  $ doveadm pw -s CLEARTEXT -p secret
smd5 | secret | {SMD5}7j2worRLiH3zMbg0GZ1SvLc0h1U=
  $ doveadm pw -s SMD5 -p secret
md5-crypt | secret | {MD5}$1$NIFh.02g$MCc16lOvSXfDVg7mPUgBw.
  $ doveadm pw -s MD5 -p secret
sha | secret | {SHA1}5en6G6MezRroT3XKqkdPOmY/BfQ=
  $ doveadm pw -s SHA1 -p secret
bcrypt | secret | {CRYPT}$2y$05$7sy/m53dqLQUpwCDaA7wb.cb8wFIpAaBNJTLIlw7aS0cEsutqoQTe
  $ doveadm pw -s CRYPT -p secret
scram-sha-1 | secret | {SCRAM-SHA-1}4096,R14sqLR88ZSTQaTYe8T1uw==,qLFs/hOcG++HFfDk66foadz5NQs=,ljCC0zhJFa5cQKL7s4k9ECTGT1g=
  $ doveadm pw -s SCRAM-SHA-1 -p secret
scram-sha-256 | secret | {SCRAM-SHA-256}4096,8HVto9JrjeuXGTpLQLXSKg==,pXk6nb/8WGGRDjC2eWP2snww7Zz/pXpIi6I5oSulZ0E=,gOVWj9b4Q+V5eNGcejK4M69fVtjSxfZfhtJf+Qe1QPU=
  $ doveadm pw -s SCRAM-SHA-256 -p secret
ssha512 | 日本語パスワード | {SSHA512}N+bgENuHKJvViXOEYZoZwEnjPAPY9DKVnU2rivrXWKu5WhxgALfAJaeBpzoH974uVwjack11aM7ZpGwQIkWx7LBIhuI=
  $ doveadm pw -s SSHA512 -p 日本語パスワード
argon2 | 日本語パスワード | {ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$mepNpbWAb6RpaqaJHJ+keg$RKOa7BZUM9hpS+TtrIiVNlvmWaB9K+TZsFqUh73OKTM
  $ doveadm pw -s ARGON2ID -p 日本語パスワード
pbkdf2 | pässwörd€ | {PBKDF2}$1$HPRfxeH3sF.99Wrq$5000$6133e7c61d06649d1975451bc5688cb3b4ed20f2
  $ doveadm pw -s PBKDF2 -p pässwörd€
sha256 | secret | {SHA256.HEX}2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b
  $ doveadm pw -s SHA256.HEX -p secret
plain | secret | {PLAIN.B64}c2VjcmV0
  $ doveadm pw -s PLAIN.B64 -p secret
ssha | secret | {SSHA.HEX}9a1996b4236d4c8c4119fa66716ca9589eac2366fa8eaed9
  $ doveadm pw -s SSHA.HEX -p secret
md5 | secret | {PLAIN-MD5.B64}Xr4ilOzQ4PCOq3aQ0qbuaQ==
  $ doveadm pw -s PLAIN-MD5.B64 -p secret
ssha | secret | {SSHA}enjjYJUfpj+oCduI+b20Ac8i3pDkQktS
  $ slappasswd -h {SSHA} -s secret
md5 | secret | {MD5}Xr4ilOzQ4PCOq3aQ0qbuaQ==
  $ slappasswd -h {MD5} -s secret
smd5 | secret | {SMD5}CABjn5tuQXJMu43MgWQMQsCsiFU=
  $ slappasswd -h {SMD5} -s secret
sha512-crypt | secret | {CRYPT}$6$K0L98txHvUpshpyC$Pm8fElkF5qssryi3EmbT0b5TpiIo53bJJMupAnrqrPTvBTLHMcaCALx9UIRrQ2/Y3Kj0bK5FbrKX2B9Kq6XYV.
  $ slappasswd -h {CRYPT} -c $6$%.16s -s secret
sha256-crypt | secret | {CRYPT}$5$sojPXIcb6qZ8.mxt$2cUcnMlSi/Pff5jwK2ADQMDeHRlym0MsWxxMQ2vjPl5
  $ slappasswd -h {CRYPT} -c $5$%.16s -s secret
md5-crypt | secret | {CRYPT}$1$CoVFHdVp$9nBZ1wi6szmHqH9jzTXao1
  $ slappasswd -h {CRYPT} -c $1$%.8s -s secret
ssha256 | secret | {SSHA256}xMO6z3TULtJxarqffg2ufpLl/cj1UXes4518XZvWk4MSVolDD8FecA==
  $ slappasswd -o module-load=pw-sha2.la -h {SSHA256} -s secret
ssha512 | secret | {SSHA512}ZCu8h0HDZDPtmzts4fXXhx25XMxxrJ6+q3yzxLSxrc6z600L0rZ7YLkaR9AP7qekcPz7S70cPKWCScvgfq8oJQrToQEUTAAP
  $ slappasswd -o module-load=pw-sha2.la -h {SSHA512} -s secret
ssha384 | secret | {SSHA384}pC6rUEJ0wFFAsQo4x76sajcSg3etdejFKDU1g4v+t3jZlURv9Yz0TW+j3VNZ6ODjl2rxcPQP2Eo=
  $ slappasswd -o module-load=pw-sha2.la -h {SSHA384} -s secret
sha384 | secret | {SHA384}WKd1ukESvjAFrkQHznV9iP2nHUBJe7gCbsrFTU4//HIyzo3jq1rLMK45dg/ufFPt
  $ slappasswd -o module-load=pw-sha2.la -h {SHA384} -s secret
pbkdf2 | secret | {PBKDF2}10000$sIh6u.PHvlxCNKd2Ywactw$PUIkdOA.sXMUT9psxABBr8l8OUU
  $ slappasswd -o module-load=pw-pbkdf2.la -h {PBKDF2} -s secret
pbkdf2 | secret | {PBKDF2-SHA1}10000$kJ5vFiOoPKadm/NulWgCGw$6mBmWayyXmGmJXkPOhRzQo0bPwo
  $ slappasswd -o module-load=pw-pbkdf2.la -h {PBKDF2-SHA1} -s secret
pbkdf2 | secret | {PBKDF2-SHA256}10000$Xrh4mFIIc75A5Yj./JMtPw$uWpPa0dCEJo4Qjj5qOCwz0hf0CLyGkEWOZNaWPshvAI
  $ slappasswd -o module-load=pw-pbkdf2.la -h {PBKDF2-SHA256} -s secret
pbkdf2 | secret | {PBKDF2-SHA512}10000$oNbMNC2wfdRLuau3KwcS2w$YiuF0Ea9QhQxBm5xvHm3y/hFBlH5Em.t1HWQ6PN4xnWTEy3N3rJ3TJ/o6qz57RIqWn8SU//NJ7fEPR7BSnAHqg
  $ slappasswd -o module-load=pw-pbkdf2.la -h {PBKDF2-SHA512} -s secret
pbkdf2 | pässwörd€ | {PBKDF2-SHA512}10000$QBE/529ctZcCm7Ns.GqjKg$cfej25GhjtzcTCXdxCA8w3XyvTDblLNqvCAxfAE67ZV75jc.gj1GX1.C7pUVVDgteq/MHBiih1xRCISyw0FJ0g
  $ slappasswd -o module-load=pw-pbkdf2.la -h {PBKDF2-SHA512} -s pässwörd€
argon2 | secret | {ARGON2}$argon2i$v=19$m=4096,t=3,p=1$8qrKML1qbE3YuaQLciByKw$Gu6hNbHN/+o+F+Y+S/EE9pBBgiF+b8Oo7+9PQuBn/8o
  $ slappasswd -o module-load=argon2.la -h {ARGON2} -s secret
argon2 | 日本語パスワード | {ARGON2}$argon2i$v=19$m=4096,t=3,p=1$gp0z6VT3I2JCCCZtyykGMQ$eBuzVHt/0r6egV+mPRf6i1U2HwSu7OU+cZ/CM/3Ik8o
  $ slappasswd -o module-load=argon2.la -h {ARGON2} -s 日本語パスワード
ssha | 日本語パスワード | {SSHA}cEAe03hbKY8Thuj3ktB4QaW/5aznR1yl
  $ slappasswd -h {SSHA} -s 日本語パスワード
bcrypt | secret | $2y$05$sorS4YItkR04tbdcO3128.inMM1vpXoZOUzgxM7oEY7igLnWdM9DK
  $ htpasswd -nbB user secret
md5-crypt | secret | $apr1$08Ga5tsx$5YX56HYXjS4bhLRMVvPtT.
  $ htpasswd -nbm user secret
sha512-crypt | secret | $6$YFmoZ4e0zM8Ygtug$TnLsXdDoGZf/TY/yQiKD2wr4Ep0t2Yx.NOSFN8aZUQwZYQCEAFULe0TUKLKVJyAZM6RL04WmuA4q.DNMd.S9i1
  $ htpasswd -nb5 user secret
sha256-crypt | secret | $5$aagh4y4IE13RUTqB$QChtpfAr6zARGYwVTmTHtiATZgV/2bKTi6eCNAB97f6
  $ htpasswd -nb2 user secret
pbkdf2 | secret | $pbkdf2-sha256$29000$EeJ8711rTSklBCCEkNL6nw$KkEBT6woGXu8aBtl6RJcnbxyRg.Yze/l1MWz5gTZfoA
  $ python3 -c 'from passlib.hash import pbkdf2_sha256; print(pbkdf2_sha256.hash("secret"))'
pbkdf2 | secret | $pbkdf2-sha512$25000$g5DS2rvXWqsVImRsTUnpHQ$MitociPqPlqwvsFfrrAxwzJ3JUo.wFWjWJbvjXjm5FpjsD9bEjxr5oCwHscZkYjbZjmlu6tC.eowMBhYxMq8Mw
  $ python3 -c 'from passlib.hash import pbkdf2_sha512; print(pbkdf2_sha512.hash("secret"))'
pbkdf2 | secret | $pbkdf2$131000$6N37fw8hxDgn5FyLkTIGwA$W6UyI3njZJDyIwEVTqRYr/vc/D4
  $ python3 -c 'from passlib.hash import pbkdf2_sha1; print(pbkdf2_sha1.hash("secret"))'
scrypt | secret | $scrypt$ln=16,r=8,p=1$+z+HsNbaW+tdixEiBCAEAA$Lndh0zxmREnya2u6nTiKdClk+B67W2fBvzeG4FN/E3s
  $ python3 -c 'from passlib.hash import scrypt; print(scrypt.hash("secret"))'
pbkdf2 | secret | pbkdf2_sha256$29000$d8nNjp5EhwOF$8mahPC29uG4KN+BXLdL80gz6RR4LS05LbfBu3RmTGOM=
  $ python3 -c 'from passlib.hash import django_pbkdf2_sha256; print(django_pbkdf2_sha256.hash("secret"))'
pbkdf2 | secret | pbkdf2_sha1$131000$wcAHLu5jMO1L$ya1FvNhPqRR2fpyBm8uv0zg4kY0=
  $ python3 -c 'from passlib.hash import django_pbkdf2_sha1; print(django_pbkdf2_sha1.hash("secret"))'
pbkdf2 | secret | {PBKDF2-SHA256}29000$ce7dO6f0vlfKea9VSuk9Rw$eyFE0R6ElwjDVKVDOnv744EDozfcR8nmAccX6xgopGM
  $ python3 -c 'from passlib.hash import ldap_pbkdf2_sha256; print(ldap_pbkdf2_sha256.hash("secret"))'
pbkdf2 | pässwörd€ | $pbkdf2-sha256$29000$xNibM6aUMgbAuLeWUgohJA$olz6cy56RtM3Jui1Q1iHzDgS64guTs4qq6b2wQRaB0o
  $ python3 -c 'from passlib.hash import pbkdf2_sha256; print(pbkdf2_sha256.hash("pässwörd€"))'
scrypt | 日本語パスワード | $scrypt$ln=16,r=8,p=1$2HsvReh9DwEgZEzJWcv5Pw$JnB4JWL/b4tDbWdOWV9O6ICdBPfD0ViHenEF5CyqQtY
  $ python3 -c 'from passlib.hash import scrypt; print(scrypt.hash("日本語パスワード"))'
pbkdf2 | secret | $pbkdf2-sha256$i=10000,l=32$+lxd2JjCPJdY2hvfFp0JsQ$my2voN5earvvhBgOQWp5ysp/XXExd026/BuHO7ydrDQ
  $ python3 -c 'import hashlib,base64,os; s=os.urandom(16); d=hashlib.pbkdf2_hmac("sha256","secret".encode(),s,10000,32); b=lambda x: base64.b64encode(x).decode().rstrip("="); print(f"$pbkdf2-sha256$i=10000,l=32${b(s)}${b(d)}")'
pbkdf2 | pässwörd€ | $pbkdf2-sha512$i=10000$eGcnjZhGRaknTKPm1rxfAw$hhz5PujSqXbfm1wANDJtxSieM2bs7QQMDyE39vq7cHx0su/7PaAvBPrXskCuSujpoxEgLL5Id2hlPZy/4XgBvQ
  $ python3 -c 'import hashlib,base64,os; s=os.urandom(16); d=hashlib.pbkdf2_hmac("sha512","pässwörd€".encode(),s,10000,64); b=lambda x: base64.b64encode(x).decode().rstrip("="); print(f"$pbkdf2-sha512$i=10000${b(s)}${b(d)}")'
scrypt | secret | $scrypt$ln=10,r=8,p=1$+Z9T6n2P8d6b0xrDmPO+9w$IeFJyt0Jb07BtegRPUMoqzUcxCJAykAqPpIdlaoelcI
  $ python3 -c 'from passlib.hash import scrypt; print(scrypt.using(rounds=10).hash("secret"))'
scrypt | 日本語パスワード | $scrypt$ln=10,r=8,p=1$WIuRkjJmzJkTwpiztvY+Bw$Bc5g6YWiAiDJFYv6zeKW9FcDUk3mLqlGjTi3MC/Ozt0
  $ python3 -c 'from passlib.hash import scrypt; print(scrypt.using(rounds=10).hash("日本語パスワード"))'
yescrypt | secret | $y$j7T$A4ltD1zhsJgmZzvM5Pz2w0$katuuStRIxT.DHPRrSU7nWBOfciHmmXYRunW/8qBAn3
  $ mkpasswd -m yescrypt -R 3 secret
bcrypt | pässwörd€ | $2b$05$FD/2lah8Z7xsCRuxW35agu9aiavP9cHXdApFp5G4TpnSdX9detqU6
  $ mkpasswd -m bcrypt -R 4 pässwörd€
scram-sha-256 | pässwörd€ | {SCRAM-SHA-256}4096,zgwfSA09YOCDBHUrGiRs+A==,cyBoxKlUDDjDH0oRjBDSI685ChGeEksbRkJPj/uxy54=,COwFgzoltXDxYaVjVMMY5ps9zzL+XM0GzQVEN2fBkBA=
  $ doveadm pw -s SCRAM-SHA-256 -p pässwörd€
ssha256 | secret | {SSHA256.HEX}92fb0e16fa4d277cb56de8d369aac6ffed638562fe3626f6aae6d4e3cc89048b99d2bd05
  $ doveadm pw -s SSHA256.HEX -p secret
sha512-crypt | 日本語パスワード | {SHA512-CRYPT}$6$rounds=6000$Ve35QBDz2uBPwl65$lXuS7gXglUMAtp0dB/hOQ0XzU/TpylI7vdQ2sLkgqrlvTBWiAJMa9CWdcYgxv3mXXARysb9lUtfsnCEkRd..g.
  $ doveadm pw -s SHA512-CRYPT -r 6000 -p 日本語パスワード
"##;
