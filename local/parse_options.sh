# Kaldi-style option parsing: source after declaring defaults.
# Any variable declared before sourcing can be set as --name value (dashes become underscores).
# Remaining positional arguments are left in "$@".
while true; do
  [ -z "${1:-}" ] && break
  case "$1" in
    --help|-h)
      echo "usage: $0 [--stage N] [--stop-stage M] [--<variable> value ...]"; exit 0 ;;
    --*=*)
      echo "$0: use '--name value', not '--name=value' ($1)" >&2; exit 1 ;;
    --*)
      name=$(echo "${1#--}" | sed 's/-/_/g')
      if ! declare -p "$name" >/dev/null 2>&1; then
        echo "$0: invalid option $1 (no variable '$name')" >&2; exit 1
      fi
      [ $# -ge 2 ] || { echo "$0: option $1 needs a value" >&2; exit 1; }
      eval "$name=\"\$2\""
      shift 2 ;;
    *) break ;;
  esac
done
