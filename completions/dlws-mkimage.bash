# bash completion for dlws-mkimage(1)                      -*- shell-script -*-
# Installed as share/bash-completion/completions/dlws-mkimage; needs nothing
# from the bash-completion package. Commands, each command's options, recipe
# files for build/render/certs, a .yaml/.yml after init --from-dlws, outputs
# (files and directories) for inspect/verify/flash/publish, block devices for
# flash's DEVICE, and the hostnames of the recipe's cluster values for
# render --node.

# The hostnames the cluster values of RECIPE list: only `hostname:` entries,
# block style (- hostname: a) or flow style ({ hostname: a, ip: ... }).
_dlws_mkimage_hostnames() {
	local recipe=$1 cluster
	recipe=${recipe/#\~/$HOME}
	[[ -f $recipe && -r $recipe ]] || return 0
	cluster=$(sed -n -e 's/[[:space:]]#.*//' -e 's/^cluster:[[:space:]]*//p' -- "$recipe" 2>/dev/null | head -n 1)
	cluster=${cluster%"${cluster##*[![:space:]]}"}
	cluster=${cluster#[\"\']} cluster=${cluster%[\"\']}
	[[ -n $cluster ]] || return 0
	[[ $cluster == /* ]] || cluster=$(dirname -- "$recipe")/$cluster
	[[ -f $cluster && -r $cluster ]] || return 0
	sed -e 's/^[[:space:]]*#.*//' -e 's/[[:space:]]#.*//' -- "$cluster" 2>/dev/null |
		grep -oE '(^|[[:space:]{,-])hostname:[[:space:]]*["'\'']?[A-Za-z0-9][A-Za-z0-9.-]*' |
		sed -E 's/.*hostname:[[:space:]]*["'\'']?//' | sort -u
}

# Whole block devices (no partitions) and their stable /dev/disk/by-id names.
_dlws_mkimage_devices() {
	local b d
	for b in /sys/block/*; do
		[[ -b /dev/${b##*/} ]] && echo "/dev/${b##*/}"
	done
	for d in /dev/disk/by-id/*; do
		[[ -b $d && $d != *-part[0-9]* ]] && echo "$d"
	done
}

_dlws_mkimage() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev= cmd= cmd_i=0 eq= i w
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
	local commands="init build render certs flash publish inspect verify"
	local common="--quiet --verbose --help"
	COMPREPLY=()

	# The command: the first word after the tool's own options.
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		case $w in
		-*) ;;
		*) cmd=$w cmd_i=$i; break ;;
		esac
	done
	# `dlws-mkimage RECIPE...` is build.
	if [[ -n $cmd && " $commands " != *" $cmd "* ]]; then
		cmd=build
	fi

	# --opt=VALUE arrives as --opt, =, VALUE (= is in COMP_WORDBREAKS).
	if [[ $prev == = && COMP_CWORD -ge 2 ]]; then
		prev=${COMP_WORDS[COMP_CWORD - 2]} eq=1
	elif [[ $cur == = && COMP_CWORD -ge 1 ]]; then
		cur= eq=1
	elif [[ $cur == --*=* ]]; then
		prev=${cur%%=*} cur=${cur#*=} eq=1
	fi

	# Arguments of options.
	case $cmd:$prev in
	render:--node | render:-n)
		for ((i = COMP_CWORD - 1; i > cmd_i; i--)); do
			w=${COMP_WORDS[i]}
			if [[ $w == *.recipe ]]; then
				mapfile -t COMPREPLY < <(compgen -W "$(_dlws_mkimage_hostnames "$w")" -- "$cur")
				return 0
			fi
		done
		for ((i = COMP_CWORD + 1; i < ${#COMP_WORDS[@]}; i++)); do
			w=${COMP_WORDS[i]}
			if [[ $w == *.recipe ]]; then
				mapfile -t COMPREPLY < <(compgen -W "$(_dlws_mkimage_hostnames "$w")" -- "$cur")
				return 0
			fi
		done
		return 0
		;;
	init:--ssh-key)
		_dlws_mkimage_files any "$cur"
		return 0
		;;
	init:--from-dlws)
		_dlws_mkimage_files yaml "$cur"
		return 0
		;;
	init:--name | init:-n | init:--master | init:-m | init:--etcd | init:--worker | init:--boot-server)
		return 0
		;;
	build:--set | build:-s | render:--set | render:-s | publish:--keep | publish:-k | publish:--ssh | publish:-e)
		return 0
		;;
	publish:--rollback)
		# --rollback=ID takes an id; after a plain --rollback comes DEST.
		[[ -n $eq ]] && return 0
		;;
	esac

	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			mapfile -t COMPREPLY < <(compgen -W "--quiet --verbose --help --version" -- "$cur")
		else
			mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
			_dlws_mkimage_files recipe "$cur"
		fi
		return 0
	fi

	if [[ $cur == -* ]]; then
		local opts
		case $cmd in
		init) opts="--from-dlws --name --master --etcd --worker --ssh-key --boot-server $common" ;;
		build) opts="--set --no-wait --no-cache --cache-max $common" ;;
		render) opts="--set --node --no-wait $common" ;;
		certs) opts="--list --json --rotate-token --no-wait $common" ;;
		flash) opts="--yes --allow-file $common" ;;
		publish) opts="--keep --list --json --rollback --rollback= --no-wait --ssh $common" ;;
		inspect) opts="--json $common" ;;
		verify) opts="$common" ;;
		esac
		mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
		[[ ${COMPREPLY[*]} == *= ]] && type compopt &>/dev/null && compopt -o nospace 2>/dev/null
		return 0
	fi

	case $cmd in
	init)
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		type compopt &>/dev/null && compopt -o filenames 2>/dev/null
		;;
	build | render | certs)
		_dlws_mkimage_files recipe "$cur"
		;;
	inspect | verify | publish)
		_dlws_mkimage_files any "$cur"
		;;
	flash)
		# IMAGE first, then DEVICE (flash's options take no argument).
		local n=0
		for ((i = cmd_i + 1; i < COMP_CWORD; i++)); do
			[[ ${COMP_WORDS[i]} == -* ]] || n=$((n + 1))
		done
		if ((n == 0)); then
			_dlws_mkimage_files any "$cur"
		elif ((n == 1)); then
			mapfile -t COMPREPLY < <(compgen -W "$(_dlws_mkimage_devices)" -- "$cur")
			# --allow-file: a regular file will do too.
			[[ " ${COMP_WORDS[*]} " == *" --allow-file "* ]] && _dlws_mkimage_files any "$cur"
		fi
		;;
	esac
	return 0
}

# _dlws_mkimage_files recipe|any CUR: appends *.recipe files (or any file)
# and directories to descend into.
_dlws_mkimage_files() {
	local kind=$1 cur=$2 f
	local -a found=()
	if [[ $kind == recipe ]]; then
		mapfile -t found < <(compgen -f -X '!*.recipe' -- "$cur")
	elif [[ $kind == yaml ]]; then
		# Two patterns: -X's extglob alternatives depend on the user's shopt.
		mapfile -t found < <(compgen -f -X '!*.yaml' -- "$cur"; compgen -f -X '!*.yml' -- "$cur")
	else
		mapfile -t found < <(compgen -f -- "$cur")
	fi
	for f in "${found[@]}"; do
		[[ -d $f ]] || COMPREPLY+=("$f")
	done
	mapfile -t found < <(compgen -d -- "$cur")
	COMPREPLY+=("${found[@]}")
	type compopt &>/dev/null && compopt -o filenames 2>/dev/null
	return 0
}

complete -F _dlws_mkimage dlws-mkimage
