# Shared by tuning/sysctl.sh and tuning/udp-host.sh (sourced, not run):
# reading a sysctl key under $PROC_SYS and judging it against $REC[key].
# A value is "low" if any field is below the recommendation; the target is
# the field-wise maximum, so nothing is ever lowered. Needs extglob.

key_path() { printf '%s/%s' "$PROC_SYS" "${1//.//}"; }

# Current value with whitespace normalised to single spaces, or "" if absent.
read_key() {
  local p v
  p=$(key_path "$1")
  [[ -r $p ]] || return 0
  local -a f
  v=$(<"$p") || return 0
  read -r -a f <<<"$v" || true
  printf '%s' "${f[*]}"
}

# Compare two non-negative decimal integers of any length (fs.file-max may be
# LONG_MAX, beyond what some tools handle). Prints -1, 0 or 1.
num_cmp() {
  local a=$1 b=$2
  a=${a##+(0)}; b=${b##+(0)}
  a=${a:-0}; b=${b:-0}
  if ((${#a} != ${#b})); then
    ((${#a} < ${#b})) && echo -1 || echo 1
  elif [[ $a == "$b" ]]; then
    echo 0
  elif [[ $a < $b ]]; then
    echo -1
  else
    echo 1
  fi
}

# Given current and recommended values (space-separated fields), print the
# value to set: field-wise max(current, recommended). Fails (status 1) if a
# field is not a plain number or the field counts differ.
target_value() {
  local -a cur rec out=()
  read -r -a cur <<<"$1"
  read -r -a rec <<<"$2"
  ((${#cur[@]} == ${#rec[@]})) || return 1
  local i
  for i in "${!rec[@]}"; do
    [[ ${cur[i]} =~ ^[0-9]+$ ]] || return 1
    if [[ $(num_cmp "${cur[i]}" "${rec[i]}") == -1 ]]; then
      out+=("${rec[i]}")
    else
      out+=("${cur[i]}")
    fi
  done
  printf '%s' "${out[*]}"
}

# Status of one key: sets globals CUR, TGT, STATE (ok|low|absent|odd).
evaluate() {
  local k=$1
  CUR=$(read_key "$k")
  TGT=""
  if [[ -z $CUR ]]; then
    STATE=absent
  elif ! TGT=$(target_value "$CUR" "${REC[$k]}"); then
    STATE=odd
    TGT=""
  elif [[ $TGT == "$CUR" ]]; then
    STATE=ok
  else
    STATE=low
  fi
}
