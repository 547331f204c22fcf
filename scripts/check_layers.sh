#!/usr/bin/env bash
# Checks that the layers' includes point one way (docs/architecture.md):
#   hooks <- core <- storage <- report, runs <- views <- app
# and that core/ never includes SQLite, ImGui or GLFW (nor storage/ a GUI header). Exit 1 on a
# violation, naming the file, the include and the rule it breaks.
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
declare -A allowed=(
  [hooks]="hooks"
  [core]="hooks core"
  [storage]="hooks core storage"
  [report]="hooks core storage report"
  [runs]="hooks core storage runs"
  [views]="hooks core storage report runs views"
  [app]="hooks core storage report runs views app"
)
declare -A banned=(
  [hooks]="sqlite3 imgui GLFW"
  [core]="sqlite3 imgui GLFW"
  [storage]="imgui GLFW"
  [report]="imgui GLFW"
  [runs]="imgui GLFW"
)
bad=0
for layer in hooks core storage report runs views app; do
  [ -d "$layer" ] || continue
  while IFS= read -r line; do
    file=${line%%:*}; inc=${line#*:}
    if [[ $inc =~ \#include\ \"([a-z_]+)/ ]]; then
      dep=${BASH_REMATCH[1]}
      case " hooks core storage report runs views app " in *" $dep "*) ;; *) continue ;; esac
      if [[ " ${allowed[$layer]} " != *" $dep "* ]]; then
        echo "$file: includes $dep/ ($inc): $layer/ may include only ${allowed[$layer]}"; bad=1
      fi
    fi
    for b in ${banned[$layer]:-}; do
      if [[ $inc =~ \<$b ]]; then echo "$file: $inc: $layer/ must not include $b"; bad=1; fi
    done
  done < <(grep -rHE '^\s*#\s*include' "$layer" --include='*.h' --include='*.cpp' --include='*.cuh' --include='*.cu' | sed -E 's/:\s*#\s*include\s*/:#include /')
done
[ $bad = 0 ] && echo "layers: every include points down"
exit $bad
