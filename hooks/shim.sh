#!/bin/sh
# bgtask-shim v2 @HOOK@
# Installed by `bgtask install-hooks`; `bgtask uninstall-hooks` puts back
# what was here. The hook that was here before runs first (@HOOK@.bgtask-chained)
# and its exit code is kept. BGTASK=0 turns bgtask off, BGTASK_SKIP=a,b skips tasks.
bin='@BIN@'
fast='@FAST@'
chained="$0.bgtask-chained"
status=0
input=$(cat)                                                  #stdin
if [ -x "$chained" ]; then
  printf '%s\n' "$input" | "$chained" "$@"                    #stdin
  "$chained" "$@"                                             #!stdin
  status=$?
fi
[ "${BGTASK-}" = 0 ] && exit "$status"
[ "$status" = 0 ] || exit "$status"                           #gate
[ -x "$fast" ] && exec "$fast" --status "$status" @HOOK@ "$@" </dev/null                   #notify,!stdin
[ -x "$fast" ] && { printf '%s\n' "$input" | exec "$fast" --status "$status" @HOOK@ "$@"; exit "$status"; }  #notify,stdin
[ -x "$bin" ] || bin=$(command -v bgtask) || exit "$status"
printf '%s\n' "$input" | exec "$bin" hook --gate @HOOK@ "$@"  #gate
printf '%s\n' "$input" | exec "$bin" hook --status "$status" @HOOK@ "$@"  #notify,stdin
exec "$bin" hook --status "$status" @HOOK@ "$@" </dev/null   #notify,!stdin
