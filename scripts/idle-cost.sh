#!/bin/bash
# Idle cost of the dashboard over 30 s with one connection in TIME_WAIT.
port=$1
tmux kill-session -t idle 2>/dev/null
tmux new-session -d -s idle -x 120 -y 40 "${TCP_LAB:-target/release/tcp-lab} --port $port"
sleep 1
tmux send-keys -t idle c; sleep 0.3; tmux send-keys -t idle x; sleep 0.3; tmux send-keys -t idle X; sleep 1
pid=$(pgrep -f "tcp-lab --port $port" | head -1)
tk=$(getconf CLK_TCK)
a=$(awk '{print $14+$15}' /proc/$pid/stat)
sleep 30
b=$(awk '{print $14+$15}' /proc/$pid/stat)
rss=$(awk '/VmRSS/{print $2}' /proc/$pid/status)
tmux capture-pane -p -t idle | grep -m1 TIME_WAIT
echo "cpu: $(( (b-a) ))/$tk ticks in 30 s = $(python3 -c "print(round(($b-$a)/$tk/30*100,2))")% of one core; RSS ${rss} kB"
tmux send-keys -t idle q
