/-
Sieve's trusted target program (see verifier_service/lean/trusted.py).

It runs in the warm worker on the environment the proof elaborated to, and answers with ONE info
message, `SIEVE-TARGET <json>`: the request's nonce and the target constant's kind (`theorem`,
`axiom`, `opaque`, `def`, ...) and type, serialised by `serExpr` exactly as the statement
program serialises the statement elaborated alone (see statement.lean for the form), or
`{"error": ...}` when there is no such constant. The constant's name reaches it as data: the
placeholder string literal on the line marked `SIEVE-DATA` is replaced by one plain Lean string
literal holding the JSON object {"nonce", "name"}, and the name is taken apart into components
here (`«»` escapes honoured), never spliced into source.

Lean versions: written against the sources of v4.9.0 and v4.19.0 (`Environment.find?`,
`ConstantInfo`, `Expr`, `Level`). Checked against the sources, NOT compiled: no native Lean was
available where it was written. The header must import `Lean` (Mathlib does).
-/
namespace SieveTrustedTarget
open Lean Lean.Elab Lean.Elab.Command

-- BEGIN SIEVE-EXPR (byte-identical in statement.lean and target.lean)
partial def serLevel : Level → String
  | .zero => "0"
  | .succ l => "(s " ++ serLevel l ++ ")"
  | .max a b => "(max " ++ serLevel a ++ " " ++ serLevel b ++ ")"
  | .imax a b => "(imax " ++ serLevel a ++ " " ++ serLevel b ++ ")"
  | .param n => "(p " ++ n.toString.quote ++ ")"
  | .mvar _ => "(?)"

def serBinder : BinderInfo → String
  | .implicit => "{}"
  | .strictImplicit => "{{}}"
  | .instImplicit => "[]"
  | _ => "()"

partial def serExpr : Expr → String
  | .bvar i => "(b " ++ toString i ++ ")"
  | .fvar _ => "(fvar)"
  | .mvar _ => "(mvar)"
  | .sort l => "(sort " ++ serLevel l ++ ")"
  | .const n ls => "(c " ++ n.toString.quote ++ ls.foldl (fun s l => s ++ " " ++ serLevel l) "" ++ ")"
  | .app f a => "(app " ++ serExpr f ++ " " ++ serExpr a ++ ")"
  | .lam _ t b bi => "(lam " ++ serBinder bi ++ " " ++ serExpr t ++ " " ++ serExpr b ++ ")"
  | .forallE _ t b bi => "(pi " ++ serBinder bi ++ " " ++ serExpr t ++ " " ++ serExpr b ++ ")"
  | .letE _ t v b _ => "(let " ++ serExpr t ++ " " ++ serExpr v ++ " " ++ serExpr b ++ ")"
  | .lit (.natVal n) => "(n " ++ toString n ++ ")"
  | .lit (.strVal s) => "(str " ++ s.quote ++ ")"
  | .mdata _ e => serExpr e
  | .proj s i e => "(proj " ++ s.toString.quote ++ " " ++ toString i ++ " " ++ serExpr e ++ ")"

def kindOf : ConstantInfo → String
  | .thmInfo _ => "theorem"
  | .axiomInfo _ => "axiom"
  | .defnInfo _ => "def"
  | .opaqueInfo _ => "opaque"
  | .quotInfo _ => "quot"
  | .inductInfo _ => "inductive"
  | .ctorInfo _ => "constructor"
  | .recInfo _ => "recursor"
-- END SIEVE-EXPR

/-- `A.«b.c».d` as the name `A`, `b.c`, `d` (a leading `_root_` dropped). -/
def nameOf (text : String) : Name := Id.run do
  let mut parts : Array String := #[]
  let mut cur := ""
  let mut escaped := false
  for c in text.toList do
    if escaped then
      if c == '»' then escaped := false else cur := cur.push c
    else if c == '«' then escaped := true
    else if c == '.' then
      parts := parts.push cur
      cur := ""
    else cur := cur.push c
  parts := parts.push cur
  if parts[0]? == some "_root_" then parts := parts.extract 1 parts.size
  return parts.foldl Name.mkStr Name.anonymous

end SieveTrustedTarget

open Lean Lean.Elab.Command SieveTrustedTarget in
#eval show CommandElabM Unit from do
  let data : String := "SIEVE-DATA" -- SIEVE-DATA: replaced by one escaped string literal
  let json ← match Json.parse data with
    | .ok j => pure j
    | .error e => throwError "sieve: bad data: {e}"
  let nonce := (json.getObjValAs? String "nonce").toOption.getD ""
  let name := nameOf ((json.getObjValAs? String "name").toOption.getD "")
  let result := match (← getEnv).find? name with
    | some info => Json.mkObj [("type", toJson (serExpr info.type)), ("kind", toJson (kindOf info))]
    | none => Json.mkObj [("error", toJson s!"unknown constant {name}")]
  logInfo ("SIEVE-TARGET " ++ (result.setObjVal! "nonce" (toJson nonce)).compress)
