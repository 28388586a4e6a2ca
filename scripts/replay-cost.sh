#!/bin/bash
# The memory and key latency of `tcp-lab replay` on a big recording (scripts/big-recording.py):
# VmHWM once loaded and after playing to the end at 16x, then how long 50 queued ← and q take to exit.
# usage: scripts/replay-cost.sh target/release/tcp-lab big.jsonl   (needs tmux)
BIN=$1; FILE=$2; S=hrm$$
tmux new-session -d -s $S -x 160 -y 50 "$BIN replay --speed 16 $FILE; echo EXITED; sleep 30"
for i in $(seq 300); do pid=$(pgrep -f "^$BIN replay --speed 16 $FILE" | head -1); [ -n "$pid" ] && tmux capture-pane -p -t $S | grep -q "entry" && break; sleep 0.2; done
echo "loaded: $(grep VmHWM /proc/$pid/status)"
for i in $(seq 600); do tmux capture-pane -p -t $S | grep -q "space again" && break; sleep 0.2; done
tmux capture-pane -p -t $S | tail -2
echo "played: $(grep VmHWM /proc/$pid/status) $(grep VmRSS /proc/$pid/status)"
t0=$(date +%s.%N)
for i in $(seq 50); do tmux send-keys -t $S Left; done
tmux send-keys -t $S q
for i in $(seq 1200); do tmux capture-pane -p -t $S | grep -q EXITED && break; sleep 0.05; done
t1=$(date +%s.%N)
echo "50 Left + q: $(echo "$t1 - $t0" | bc) s"
tmux kill-session -t $S
