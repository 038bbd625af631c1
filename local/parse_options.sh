#!/usr/bin/env bash
# Command-line options for recipe scripts, sourced after the defaults are declared:
#
#   ### options
#   stage=1        # first stage to run
#   ### end options
#   . local/parse_options.sh
#
# `--foo_bar V`, `--foo-bar V` and `--foo_bar=V` set the shell variable foo_bar, which must
# be declared in the options block (unknown options fail). `--help` prints every declared
# option, its comment (read from the block between the two markers of the calling script) and
# its default: the value the script gave it, so a default read from elsewhere (the package's
# espnet_hubert_ae.defaults, as default_<name>) shows its value; a ${default_<name>} in a
# comment is replaced by its value too.
# Positional arguments are left in "$@". ``command_line`` holds the command as typed, quoted so
# that it can be pasted again (for the records of a run).

__options_help() {
    local script=$1 kind name comment var
    echo "Usage: ${script} [options]"
    echo
    echo "Options (default in brackets):"
    # Each option's comment, with any ${default_...} in it replaced by its value; its default
    # is the value the script gave it, before any option was parsed.
    awk '
        /^### options/ { inside = 1; next }
        /^### end options/ { inside = 0 }
        inside && /^[A-Za-z_][A-Za-z0-9_]*=/ {
            name = $0; sub(/=.*/, "", name)
            rest = substr($0, length(name) + 2)
            comment = ""
            if (match(rest, /[ \t]+#[ \t]*/)) comment = substr(rest, RSTART + RLENGTH)
            printf "option\t%s\t%s\n", name, comment
            next
        }
        inside && /^#/ { sub(/^# ?/, ""); printf "group\t-\t%s\n", $0 }
    ' "${script}" | while IFS=$'\t' read -r kind name comment; do
        for var in ${!default_@}; do
            comment=${comment//"\${${var}}"/"${!var}"}
        done
        if [ "${kind}" = option ]; then
            printf "  --%-20s %s [%s]\n" "${name}" "${comment}" "${__options_default[${name}]}"
        else
            printf "\n  %s\n" "${comment}"
        fi
    done
}

command_line=$0
[ $# -eq 0 ] || command_line+=$(printf ' %q' "$@")
# The options a script accepts are exactly the names in its options block.
__options_known=" $(awk '/^### options/{i=1;next} /^### end options/{i=0} i&&/^[A-Za-z_][A-Za-z0-9_]*=/{sub(/=.*/,"");printf "%s ",$0}' "$0")"
declare -A __options_default=()
for __options_name in ${__options_known}; do
    __options_default[${__options_name}]=${!__options_name-}
done
__options_positional=()
while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            __options_help "$0"
            exit 0
            ;;
        --*=*)
            __options_name=${1%%=*}; __options_value=${1#*=}; shift
            ;;
        --*)
            __options_name=$1
            if [ $# -lt 2 ]; then
                echo "$0: option ${__options_name} needs a value (see --help)" >&2
                exit 2
            fi
            __options_value=$2; shift 2
            ;;
        *)
            __options_positional+=("$1"); shift
            continue
            ;;
    esac
    __options_name=${__options_name#--}
    __options_name=${__options_name//-/_}
    if [[ ${__options_known} != *" ${__options_name} "* ]]; then
        echo "$0: unknown option --${__options_name} (see --help for the list)" >&2
        exit 2
    fi
    printf -v "${__options_name}" '%s' "${__options_value}"
done
set -- "${__options_positional[@]+"${__options_positional[@]}"}"
unset __options_name __options_value __options_positional __options_known __options_default
