/-
Sieve's trusted statement program (see verifier_service/lean/trusted.py).

It runs in the warm worker on the header's environment and answers with ONE info message,
`SIEVE-STATEMENT <json>`: the request's nonce and either `{"type": T, "kind": K}` or
`{"error": "..."}`. It parses the statement from data (the placeholder string literal on the line
marked `SIEVE-DATA`, replaced by one plain Lean string literal holding the JSON object
{"nonce", "statement"}), checks BEFORE elaborating anything that the text is exactly one
theorem-like declaration (`theorem`, `lemma`, or `def`/`abbrev` for a construction), elaborates
that declaration (its value is whatever the text gives, normally `sorry`) inside
`withoutModifyingEnv`, and serialises the type of the constant it declared with `serExpr`.
Messages of that elaboration are dropped, so its `sorry` warning is not in the reply.

`serExpr` is an exact structural form of a kernel term: every constructor, constant name,
universe level, binder kind and literal, with bound variables as de Bruijn indices. It leaves
out binder names and metadata (`mdata`): they do not change the term the kernel checks, and
binder names can carry macro scopes that differ between two elaborations of the same text. Two
types with equal forms are the same term up to alpha-equivalence; nothing else compares equal.
The target program (target.lean) has a byte-identical copy of it (a test holds them equal).

Lean versions: written against the sources of v4.9.0 and v4.19.0 (`Expr` and `Level`
constructors, `ConstantInfo`, `withoutModifyingEnv`, `elabCommand`, `Command.State.messages`,
`Lean.Parser.parseCommand`), unchanged between them in what is used here. Checked against the
sources, NOT compiled: no native Lean was available where it was written. The header must import
`Lean` (Mathlib does).
-/
namespace SieveTrustedStatement
open Lean Lean.Parser Lean.Elab Lean.Elab.Command

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

def isEnd (stx : Syntax) : Bool :=
  stx.isOfKind `Lean.Parser.Module.eoi || stx.isOfKind `Lean.Parser.Command.eoi

/-- Declaration kinds a statement may be: theorems, and definitions for construction problems. -/
def allowedKinds : List Name :=
  [`Lean.Parser.Command.theorem, `Lean.Parser.Command.definition, `Lean.Parser.Command.abbrev]
def lemmaKinds : List Name :=
  [`lemma, `Batteries.Tactic.Lemma.lemmaCmd, `Std.Tactic.Lemma.lemmaCmd]

/-- The declared name of a theorem-like declaration command, or why it is not one. -/
def declName (stx : Syntax) : Except String Name := do
  let body ←
    if stx.isOfKind `Lean.Parser.Command.declaration then
      if allowedKinds.contains stx[1].getKind then pure stx[1]
      else throw s!"not a theorem-like declaration: {stx[1].getKind}"
    else if lemmaKinds.contains stx.getKind then pure stx[1]
    else throw s!"not a declaration: {stx.getKind}"
  let parts := body.getArgs.foldl (fun acc a =>
    if a.getKind == nullKind then acc ++ a.getArgs else acc.push a) #[]
  match parts.find? (·.isOfKind `Lean.Parser.Command.declId) with
  | some d => pure d[0].getId
  | none => throw "the declaration has no name"

/-- Elaborate the one declaration of `input` without keeping it; its constant's type and kind. -/
def elabStatement (input : String) : CommandElabM Json := do
  let scope ← getScope
  let pmctx : ParserModuleContext :=
    { env := ← getEnv, options := ← getOptions, currNamespace := scope.currNamespace,
      openDecls := scope.openDecls }
  let ictx := mkInputContext input "<sieve-statement>"
  let (stx, mps, msgs) := parseCommand ictx pmctx {} {}
  let (next, _, msgs) := parseCommand ictx pmctx mps msgs
  if msgs.hasErrors then return Json.mkObj [("error", toJson "the statement does not parse")]
  if !isEnd next then return Json.mkObj [("error", toJson "the statement is more than one command")]
  match declName stx with
  | .error e => return Json.mkObj [("error", toJson e)]
  | .ok name =>
    let full := scope.currNamespace ++ name
    let saved := (← get).messages
    modify fun s => { s with messages := {} }
    -- `Elab.async` (Lean >= 4.17) would move the declaration's messages into snapshot tasks;
    -- elaborate synchronously so that its errors are in `messages`. Set as a plain option
    -- name, so that Lean versions without the option (4.9) accept it too.
    let answer ← withScope (fun sc => { sc with opts := sc.opts.setBool `Elab.async false }) <|
      withoutModifyingEnv do
        elabCommand stx
        if (← get).messages.hasErrors then
          return Json.mkObj [("error", toJson "the statement does not elaborate")]
        match (← getEnv).find? full with
        | some info => return Json.mkObj [
            ("type", toJson (serExpr info.type)), ("kind", toJson (kindOf info))]
        | none => return Json.mkObj [("error", toJson s!"no constant {full} after elaboration")]
    modify fun s => { s with messages := saved }
    return answer

end SieveTrustedStatement

open Lean Lean.Elab.Command SieveTrustedStatement in
#eval show CommandElabM Unit from do
  let data : String := "SIEVE-DATA" -- SIEVE-DATA: replaced by one escaped string literal
  let json ← match Json.parse data with
    | .ok j => pure j
    | .error e => throwError "sieve: bad data: {e}"
  let nonce := (json.getObjValAs? String "nonce").toOption.getD ""
  let statement := (json.getObjValAs? String "statement").toOption.getD ""
  let result ← elabStatement statement
  logInfo ("SIEVE-STATEMENT " ++ (result.setObjVal! "nonce" (toJson nonce)).compress)
