# Kaldi-style option parsing: source after declaring the defaults.
# The options are the variables assigned at the start of a line of the calling script before the
# line that sources this file (`name=default  # help`); each is set as `--name value` (dashes
# become underscores). Checked here, each an error (exit 1) naming the option:
#   - an unknown option; an option with no value (or whose value is another option);
#   - a value other than true/false for an option whose default is true or false;
#   - a value that is not a whole number for an option whose default is one;
#   - a stray positional argument (these recipes take none).
# --help / -h prints the script's opening comment and every option with its default.
_po_script=$0
[ -f "$_po_script" ] || _po_script=$(basename "$0")  # the recipes cd to their own dir first
_po_names=()
_po_help=()
if [ -f "$_po_script" ]; then
  while IFS= read -r _po_line; do
    case "$_po_line" in
      *parse_options.sh*) break ;;
    esac
    if [[ "$_po_line" =~ ^([a-z_][a-z0-9_]*)=[^#]*(#[[:space:]]*(.*))?$ ]]; then
      _po_names+=("${BASH_REMATCH[1]}")
      _po_help+=("${BASH_REMATCH[3]}")
    fi
  done < "$_po_script"
fi

_po_known() {  # _po_known NAME: is NAME one of the script's options?
  local n
  if [ ${#_po_names[@]} -eq 0 ]; then declare -p "$1" >/dev/null 2>&1; return; fi
  for n in "${_po_names[@]}"; do [ "$n" = "$1" ] && return 0; done
  return 1
}

_po_usage() {
  local i n v
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$_po_script" 2>/dev/null
  echo "options (default shown; booleans take true or false):"
  for i in "${!_po_names[@]}"; do
    n=${_po_names[$i]}
    v=${!n}
    printf '  --%-18s %-28s %s\n' "${n//_/-}" "\"$v\"" "${_po_help[$i]}"
  done
}

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      _po_usage; exit 0 ;;
    --*=*)
      echo "$0: use '--name value', not '--name=value' ($1)" >&2; exit 1 ;;
    --*)
      _po_name=${1#--}; _po_name=${_po_name//-/_}
      if ! [[ "$_po_name" =~ ^[a-z_][a-z0-9_]*$ ]] || ! _po_known "$_po_name"; then
        echo "$0: unknown option $1 (see $0 --help)" >&2; exit 1
      fi
      if [ $# -lt 2 ] || [[ "$2" == --* ]]; then
        echo "$0: option $1 needs a value${2:+ (got option '$2')}" >&2; exit 1
      fi
      _po_default=${!_po_name}
      case "$_po_default" in
        true|false)
          if [ "$2" != true ] && [ "$2" != false ]; then
            echo "$0: option $1 takes true or false, not '$2'" >&2; exit 1
          fi ;;
      esac
      if [[ "$_po_default" =~ ^[0-9]+$ ]] && ! [[ "$2" =~ ^[0-9]+$ ]]; then
        echo "$0: option $1 takes a whole number, not '$2'" >&2; exit 1
      fi
      printf -v "$_po_name" '%s' "$2"
      shift 2 ;;
    *)
      echo "$0: unexpected argument '$1' (options are '--name value'; see $0 --help)" >&2
      exit 1 ;;
  esac
done
unset _po_line _po_name _po_default
