/-
Sieve's trusted parse program (shipped with the service; see verifier_service/lean/trusted.py).

It runs in the warm worker on the header's environment, before the proof is elaborated, and reads
the submitted code with Lean's own command parser (`Lean.Parser.parseCommand`, in a loop, with the
header's environment, options, namespace and open declarations; scope commands `open`,
`namespace`, `section` and `end` are elaborated as they are met, as the frontend would, because
they activate scoped syntax for the commands after them; nothing else of the code is). It answers with ONE info message,
`SIEVE-PARSE <json>`, whose JSON carries the request's nonce and, for every command:
  kind   its syntax kind (`Lean.Parser.Command.declaration`, `Lean.Parser.Command.open`, ...);
  start, stop, head
         UTF-8 byte offsets: first token, end of the last token, first token outside a doc comment;
  parts  the commands an `in` chain is made of (`open Foo in theorem ...`), outermost first,
         and the declarations of a `mutual` block after it, each with its kind, head and decl;
  decl   for a declaration: its kind, keyword, name, the serialised modifiers (doc comment left
         out) and signature (`declSig`/`optDeclSig`) and the byte range of the signature;
  leaves [start, stop, start, stop, ...] of every token outside doc comments;
and the parse errors (line, column, text), and the byte size of the text the offsets refer to
(Lean versions that normalise CRLF line endings read a shorter text). `statement`, when not
empty, is parsed the same way.

THE CODE IS DATA. The only place the service writes into this file is the placeholder string
literal on the line marked `SIEVE-DATA`, which it replaces with ONE Lean string literal made by
`verifier_service.lean.trusted.lean_string_literal` (a plain literal: no `s!`, no interpolation).
The literal holds a JSON object {"nonce", "code", "statement"} that this program decodes.

Lean versions: written against the sources of v4.9.0 and v4.19.0 (`Lean/Parser/Module.lean`:
`parseCommand`, `ModuleParserState`; `Lean/Parser/Types.lean`: `mkInputContext (input fileName)`,
`ParserModuleContext {env, options, currNamespace, openDecls}`; `Lean/Syntax.lean`:
`SourceInfo.getPos?`/`getTailPos?`; `Lean/Data/Json`), which both have these with the same
shapes. Lean >= 4.2x renamed `InputContext.input` and `String.Pos` (4.28: `inputString`,
`String.Pos.Raw`); this file uses neither field directly. It was checked against the sources,
NOT compiled: no native Lean is available where it was written. The header must import `Lean`
(Mathlib does); on a core-only header the program does not elaborate and the service answers
`error` (`parse_unavailable`).
-/
namespace SieveTrustedParse
open Lean Lean.Parser Lean.Elab Lean.Elab.Command

/-- Doc and module-doc comments: a reader that treats them as comments sees no token in them. -/
def isDoc (k : SyntaxNodeKind) : Bool :=
  k == `Lean.Parser.Command.docComment || k == `Lean.Parser.Command.moduleDoc

/-- The end-of-input marker (`Lean.Parser.Module.eoi` up to 4.9, `Lean.Parser.Command.eoi`
later): the loop stops there. -/
def isEnd (stx : Syntax) : Bool :=
  stx.isOfKind `Lean.Parser.Module.eoi || stx.isOfKind `Lean.Parser.Command.eoi

partial def leaves (stx : Syntax) (acc : Array Json) : Array Json :=
  match stx with
  | .node _ k args => if isDoc k then acc else args.foldl (fun a s => leaves s a) acc
  | .atom info _ => push info acc
  | .ident info .. => push info acc
  | .missing => acc
where
  push (info : SourceInfo) (acc : Array Json) : Array Json :=
    match info.getPos?, info.getTailPos? with
    | some s, some e => (acc.push (toJson s.byteIdx)).push (toJson e.byteIdx)
    | _, _ => acc

/-- Byte offset of the first token outside a doc comment. -/
partial def head? (stx : Syntax) : Option Nat :=
  match stx with
  | .node _ k args => if isDoc k then none else args.findSome? head?
  | .atom info _ => info.getPos?.map (·.byteIdx)
  | .ident info .. => info.getPos?.map (·.byteIdx)
  | .missing => none

/-- The syntax tree without positions, whitespace or comments: `(kind child ...)`, atoms quoted,
identifiers as their names. Doc comments are left out (they do not change what is stated). -/
partial def ser (stx : Syntax) : String :=
  match stx with
  | .node _ k args =>
    if isDoc k then "" else "(" ++ k.toString ++ args.foldl (fun s a => s ++ " " ++ ser a) "" ++ ")"
  | .atom _ v => v.quote
  | .ident _ _ v _ => "`" ++ v.toString
  | .missing => "<missing>"

def sigKinds : List Name := [`Lean.Parser.Command.declSig, `Lean.Parser.Command.optDeclSig]
/-- `lemma` in Mathlib (`lemma`), Batteries and Std. -/
def lemmaKinds : List Name :=
  [`lemma, `Batteries.Tactic.Lemma.lemmaCmd, `Std.Tactic.Lemma.lemmaCmd]

/-- The children of `stx`, with unnamed (`group(...)`, `optional`) nodes opened one level. -/
def flat (stx : Syntax) : Array Syntax :=
  stx.getArgs.foldl (fun acc a =>
    if a.getKind == nullKind then acc ++ a.getArgs else acc.push a) #[]

/-- `(declaration kind, modifiers, body)` of a declaration command, if it is one. -/
def declParts? (stx : Syntax) : Option (Name × Syntax × Syntax) :=
  if stx.isOfKind `Lean.Parser.Command.declaration then
    some (stx[1].getKind, stx[0], stx[1])
  else if lemmaKinds.contains stx.getKind then
    some (stx.getKind, stx[0], stx[1])
  else none

def declJson? (stx : Syntax) : Option Json := do
  let (kind, mods, body) ← declParts? stx
  let parts := flat body
  let keyword := match parts.find? (·.isAtom) with
    | some (.atom _ v) => v
    | _ => ""
  let name : Json := match parts.find? (·.isOfKind `Lean.Parser.Command.declId) with
    | some d => toJson d[0].getId.toString
    | none => Json.null
  let sig ← parts.find? (fun p => sigKinds.contains p.getKind)
  let start := (stx.getPos?.map (·.byteIdx)).getD 0
  let stop := (sig.getTailPos?.map (·.byteIdx)).getD start
  return Json.mkObj [
    ("kind", toJson kind.toString), ("keyword", toJson keyword), ("name", name),
    ("modifiers", toJson (ser mods)), ("signature", toJson (ser sig)),
    ("range", Json.arr #[toJson start, toJson stop])]

/-- The commands of an `in` chain, outermost first (a plain command is a chain of one); a
`mutual` block is itself followed by the declarations inside it, so each is judged by kind. -/
partial def chain (stx : Syntax) : Array Syntax :=
  if stx.isOfKind `Lean.Parser.Command.in then chain stx[0] ++ chain stx[2]
  else if stx.isOfKind `Lean.Parser.Command.mutual then
    stx[1].getArgs.foldl (fun acc d => acc ++ chain d) #[stx]
  else #[stx]

def commandJson (stx : Syntax) : Json :=
  let parts := chain stx
  let start := (stx.getPos?.map (·.byteIdx)).getD 0
  let decl := (parts.filterMap declJson?).back?.getD Json.null
  Json.mkObj [
    ("kind", toJson stx.getKind.toString),
    ("start", toJson start),
    ("stop", toJson ((stx.getTailPos?.map (·.byteIdx)).getD start)),
    ("head", toJson ((head? stx).getD start)),
    ("parts", Json.arr (parts.map fun p => Json.mkObj [
      ("kind", toJson p.getKind.toString), ("head", toJson ((head? p).getD start)),
      ("decl", (declJson? p).getD Json.null)])),
    ("decl", decl),
    ("leaves", Json.arr (leaves stx #[]))]

/-- Commands that change the scope (open namespaces, the current namespace), and with it the
scoped syntax the next command is parsed with. -/
def scopeKinds : List Name :=
  [`Lean.Parser.Command.open, `Lean.Parser.Command.namespace, `Lean.Parser.Command.section,
   `Lean.Parser.Command.noncomputableSection, `Lean.Parser.Command.end]

/-- What the parser reads the next command with: environment, options, namespace, opens. -/
def moduleContext : CommandElabM ParserModuleContext := do
  let scope ← getScope
  return { env := ← getEnv, options := ← getOptions, currNamespace := scope.currNamespace,
           openDecls := scope.openDecls }

/-- Parse `input` command by command, as the frontend does: each command with the parser of
the environment and scope the previous commands left. Of the code's commands only the scope
commands (`scopeKinds`: `open`, `namespace`, `section`, `end`) are elaborated here, since they
activate scoped syntax; every other command that can change the parser is refused on this
parse by the service. The whole command state (environment, scopes, messages) is restored
afterwards. At most one command per character: each consumes at least one. -/
def parseAll (input : String) : CommandElabM Json := do
  let saved ← get
  let ictx := mkInputContext input "<sieve>"
  let mut mps : ModuleParserState := {}
  let mut msgs : MessageLog := {}
  let mut commands : Array Json := #[]
  for _ in [0:input.length + 1] do
    let pmctx ← moduleContext
    let (stx, mps', msgs') := parseCommand ictx pmctx mps msgs
    mps := mps'
    msgs := msgs'
    if isEnd stx then break
    commands := commands.push (commandJson stx)
    if scopeKinds.contains stx.getKind then
      elabCommand stx
  set saved
  let mut errors : Array Json := #[]
  for m in msgs.toList do
    errors := errors.push (Json.mkObj [
      ("line", toJson m.pos.line), ("column", toJson m.pos.column),
      ("message", toJson (← m.data.toString))])
  -- the text the positions refer to: later Lean versions normalise CRLF line endings in
  -- `mkInputContext`, and its byte size tells the service which text that was
  let size := ictx.fileMap.source.utf8ByteSize
  return Json.mkObj [("commands", Json.arr commands), ("errors", Json.arr errors),
    ("size", toJson size)]

end SieveTrustedParse

open Lean Lean.Elab.Command SieveTrustedParse in
#eval show CommandElabM Unit from do
  let data : String := "SIEVE-DATA" -- SIEVE-DATA: replaced by one escaped string literal
  let json ← match Json.parse data with
    | .ok j => pure j
    | .error e => throwError "sieve: bad data: {e}"
  let nonce := (json.getObjValAs? String "nonce").toOption.getD ""
  let code := (json.getObjValAs? String "code").toOption.getD ""
  let statement := (json.getObjValAs? String "statement").toOption.getD ""
  let parsed ← parseAll code
  let stmt ← if statement.isEmpty then pure Json.null else parseAll statement
  let answer := Json.mkObj [("nonce", toJson nonce), ("code", parsed), ("statement", stmt)]
  logInfo ("SIEVE-PARSE " ++ answer.compress)
