//! Recorded lines for the tests of the replay: the recording reader's, the player's and the
//! dashboard's (which includes this file by path: test code is not exported from the crate).
//! Today's recording format, which old recordings keep replaying.

/// Lines as `tcp-lab run assets/scenarios/client-closes-first.toml --format json` printed
/// them (tcp_info shortened), a hand-made one with escape sequences, and broken ones.
pub(crate) const LINES: &str = r##"{"charset":"MS949","event":"session","fin_timeout_ms":60000,"listen":"127.0.0.1:40163","mode":"run \"Client closes first\"","policy":"manual","port":40163,"socket_source":"sock_diag","source":"session","t":0.0,"target":"127.0.0.1:40163","time_wait_ms":60000,"transitions":"poll"}
{"t":0.000071,"source":"lab","event":"listening","side":"server","local":"127.0.0.1:40163","who":"server","message":"listening on 127.0.0.1:40163"}
{"t":0.007996,"source":"lab","event":"connect_called","side":"client","conn":1,"local":"127.0.0.1:56252","remote":"127.0.0.1:40163","who":"client","message":"#1 connect() called → 127.0.0.1:40163 (SYN sent)"}
{"t":0.00809,"source":"kernel","event":"state","side":"client","conn":1,"owner":"client #1","local":"127.0.0.1:56252","remote":"127.0.0.1:40163","from":"SYN_SENT","to":"ESTABLISHED","held_ms":0,"tcp_info":{"rtt_us":29,"snd_cwnd":10},"who":"kernel","message":"client #1 :56252 SYN_SENT → ESTABLISHED after 72 µs"}
{"t":0.021469,"source":"lab","event":"frame_sent","side":"client","conn":1,"bytes_hex":"30 30 31 34 48 65 6c 6c 6f 20 b8 f0 c1 be b4 e5 c4 c4","text":"Hello 모종닷컴","who":"client","message":"#1 sent 18 bytes \"0014\": Hello 모종닷컴"}
{"t":0.022,"source":"lab","event":"frame_received","side":"server","conn":1,"bytes_hex":"30 30 30 37 1b 5d 32 3b 78 07 21","text":"\u001b]2;x\u0007!","malformed":false,"who":"server","message":"#1 received 11 bytes"}
this is not json
{"t":0.03,"source":"lab","event":"frame_sent","side":"client","conn":1,"bytes_hex":"zz","text":"x"}
{"t":0.031,"source":"lab","event":"teleported","side":"client","conn":1}
{"t":0.081584,"source":"kernel","event":"state","side":"client","conn":1,"owner":"client #1","local":"127.0.0.1:56252","remote":"127.0.0.1:40163","from":"FIN_WAIT_2","to":"FIN_WAIT_2","held_ms":2,"timer":"timewait","remaining_ms":60000,"who":"kernel","message":"client #1 :56252 still FIN_WAIT_2"}
{"t":0.093964,"source":"kernel","event":"gone","side":"server","conn":1,"owner":"server #1","local":"127.0.0.1:40163","remote":"127.0.0.1:56252","from":"LAST_ACK","to":null,"held_ms":0,"who":"kernel","message":"server #1 :40163 LAST_ACK → gone after 80 µs"}
{"t":0.116333,"source":"scenario","event":"check","ok":true,"who":"check","message":"ok: client #1 is TIME_WAIT, timewait 60.0s left"}
{"t":1.5,"source":"wire","event":"packet_sent","packet":3,"frame":3,"conn":1,"from":"client","to":"server","flags":"PSH/ACK","seq":1,"ack":1,"len":18,"text":"Hello 모종닷컴","retransmission":false,"held":false,"delay_ms":300,"who":"wire","message":"pkt 3"}
{"t":1.8,"source":"wire","event":"fault","packet":3,"who":"wire","message":"fault on packet 3: dropped (key)"}
"##;

/// `LINES` (real lines, a packet, a fault, broken lines) `reps` times, each repetition 2 s
/// later with its own connection, client port and packet numbers, its client socket gone at
/// its end (a few sockets at a time, as a lab session has).
pub(crate) fn long_recording(reps: usize) -> String {
    let gone = r##"{"t":1.9,"source":"kernel","event":"gone","side":"client","conn":1,"owner":"client #1","local":"127.0.0.1:56252","remote":"127.0.0.1:40163","from":"FIN_WAIT_2","to":null,"held_ms":0,"who":"kernel","message":"client #1 :56252 FIN_WAIT_2 → gone after 0.010s"}"##;
    let mut out = String::new();
    for r in 0..reps {
        for line in LINES.lines().chain([gone]) {
            let Ok(mut v) = serde_json::from_str::<serde_json::Value>(line) else {
                out.push_str(line);
                out.push('\n');
                continue;
            };
            if v["event"] == "session" && r > 0 {
                continue;
            }
            if let Some(t) = v["t"].as_f64() {
                v["t"] = (t + 2.0 * r as f64).into();
            }
            for k in ["conn", "packet"] {
                if let Some(n) = v[k].as_u64() {
                    v[k] = (n + 10 * r as u64).into();
                }
            }
            for k in ["local", "remote"] {
                if let Some(a) = v[k].as_str() {
                    v[k] = a.replace(":56252", &format!(":{}", 20_000 + r)).into();
                }
            }
            out.push_str(&v.to_string());
            out.push('\n');
        }
    }
    out
}
