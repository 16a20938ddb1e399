using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;

namespace Dbos.Execution;

/// <summary>
/// The default application version: a hash of the IL of each registered workflow body and of the compiler-generated
/// code it reaches (async and iterator state machines, lambdas, local functions), with metadata tokens resolved to names
/// and compiler-generated ordinals renumbered, so that an edit anywhere else in the program keeps the version. Calls
/// into ordinary methods are not followed: like DBOS for Python, only the workflow functions' own code counts.
/// </summary>
internal static class WorkflowCodeHash
{
    // Trimming may rewrite IL and tokens, but the same way for the same code: a trimmed app hashes its trimmed IL, stable
    // across identical builds, which is all the version needs.
    private const string TrimmedIl = "The hash reads the IL as deployed; trimming changes it only when the code changes.";

    private static readonly Lazy<(OpCode?[] OneByte, OpCode?[] TwoByte)> OpCodeTable = new(BuildOpCodeTable);

    /// <summary>The version of an application whose workflows are <paramref name="workflows"/> (name and body method).</summary>
    /// <exception cref="DbosConfigurationException">The IL of a workflow is not available (for example under NativeAOT).</exception>
    public static string Compute(string applicationName, IEnumerable<KeyValuePair<string, MethodInfo>> workflows)
    {
        var text = new StringBuilder("dbos-dotnet|").Append(applicationName);
        foreach (var (name, method) in workflows.OrderBy(w => w.Key, StringComparer.Ordinal))
        {
            text.Append("|workflow ").Append(name).Append('\n');
            new Walker(text, name).Walk(method);
        }

        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..32];
    }

    private static DbosConfigurationException NoIl(string workflowName, string why) => new(
        $"The default application version is a hash of the workflows' code, but the IL of workflow '{workflowName}' is not available ({why}). " +
        $"Set DbosConfig.ApplicationVersion (or {DbosConfig.ApplicationVersionVariable}) to a version that changes whenever workflow code changes.");

    private static (OpCode?[] OneByte, OpCode?[] TwoByte) BuildOpCodeTable()
    {
        var oneByte = new OpCode?[256];
        var twoByte = new OpCode?[256];
        foreach (var field in typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static))
        {
            if (field.GetValue(null) is OpCode code)
            {
                var value = (ushort)code.Value;
                if (code.Size == 1)
                {
                    oneByte[value] = code;
                }
                else
                {
                    twoByte[value & 0xFF] = code;
                }
            }
        }

        return (oneByte, twoByte);
    }

    /// <summary>Writes the normalized text of one workflow's code: its body and the compiler-generated code it reaches.</summary>
    private sealed class Walker(StringBuilder text, string workflowName)
    {
        private readonly HashSet<MethodBase> visited = [];
        private readonly Queue<MethodBase> pending = new();

        // Compiler-generated names carry ordinals that shift when code elsewhere in the type changes; they are replaced
        // by their order of first appearance in this walk, which only the workflow's own code determines.
        private readonly Dictionary<string, int> generatedNames = new(StringComparer.Ordinal);

        public void Walk(MethodInfo root)
        {
            if (!RuntimeFeature.IsDynamicCodeSupported)
            {
                throw NoIl(workflowName, "this runtime compiles ahead of time and keeps no IL");
            }

            Visit(root);
            while (pending.TryDequeue(out var method))
            {
                WriteMethod(method);
            }
        }

        private void Visit(MethodBase method)
        {
            if (visited.Add(method))
            {
                pending.Enqueue(method);
            }
        }

        [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = TrimmedIl)]
        private void WriteMethod(MethodBase method)
        {
            text.Append("method ").Append(Member(method)).Append('\n');
            MethodBody? body;
            try
            {
                body = method.GetMethodBody();
            }
            catch (Exception ex) when (ex is InvalidOperationException or NotSupportedException)
            {
                // A dynamic method (emitted at run time) has no IL to read.
                body = null;
            }

            if (body is null)
            {
                throw NoIl(workflowName, $"method {method.DeclaringType?.Name}.{method.Name} has no readable method body");
            }

            foreach (var local in body.LocalVariables)
            {
                text.Append("local ").Append(TypeName(local.LocalType)).Append(local.IsPinned ? " pinned" : string.Empty).Append('\n');
            }

            foreach (var clause in body.ExceptionHandlingClauses)
            {
                text.Append("try ").Append(clause.Flags).Append(' ').Append(clause.TryOffset).Append(' ').Append(clause.TryLength).Append(' ')
                    .Append(clause.HandlerOffset).Append(' ').Append(clause.HandlerLength)
                    .Append(clause.Flags == ExceptionHandlingClauseOptions.Clause && clause.CatchType is { } caught ? " " + TypeName(caught) : string.Empty)
                    .Append(clause.Flags == ExceptionHandlingClauseOptions.Filter ? " filter " + clause.FilterOffset.ToString(CultureInfo.InvariantCulture) : string.Empty)
                    .Append('\n');
            }

            // An async or iterator body is a stub that starts its state machine: the code is in the machine's MoveNext.
            if (method.GetCustomAttribute<StateMachineAttribute>()?.StateMachineType is { } machine
                && machine.GetMethod("MoveNext", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly) is { } moveNext)
            {
                Visit(moveNext);
            }

            WriteIl(method, body.GetILAsByteArray() ?? []);
        }

        [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = TrimmedIl)]
        private void WriteIl(MethodBase method, byte[] il)
        {
            var (oneByte, twoByte) = OpCodeTable.Value;
            var module = method.Module;
            var typeArguments = method.DeclaringType is { IsGenericType: true } declaring ? declaring.GetGenericArguments() : null;
            var methodArguments = method is { IsGenericMethod: true } ? method.GetGenericArguments() : null;
            var position = 0;
            while (position < il.Length)
            {
                OpCode? found = il[position] == 0xFE && position + 1 < il.Length ? twoByte[il[position + 1]] : oneByte[il[position]];
                if (found is not { } code)
                {
                    throw new InvalidOperationException($"Unknown IL opcode 0x{il[position]:X2} at offset {position} of {method.Name}.");
                }

                position += code.Size;
                text.Append(code.Name);
                switch (code.OperandType)
                {
                    case OperandType.InlineNone:
                        break;
                    case OperandType.ShortInlineBrTarget:
                    case OperandType.ShortInlineI:
                        text.Append(' ').Append((sbyte)il[position]);
                        position += 1;
                        break;
                    case OperandType.ShortInlineVar:
                        text.Append(' ').Append(il[position]);
                        position += 1;
                        break;
                    case OperandType.InlineVar:
                        text.Append(' ').Append(BinaryPrimitives.ReadUInt16LittleEndian(il.AsSpan(position)));
                        position += 2;
                        break;
                    case OperandType.InlineI:
                    case OperandType.InlineBrTarget:
                        text.Append(' ').Append(BinaryPrimitives.ReadInt32LittleEndian(il.AsSpan(position)));
                        position += 4;
                        break;
                    case OperandType.ShortInlineR:
                        text.Append(' ').Append(BinaryPrimitives.ReadSingleLittleEndian(il.AsSpan(position)).ToString("R", CultureInfo.InvariantCulture));
                        position += 4;
                        break;
                    case OperandType.InlineI8:
                        text.Append(' ').Append(BinaryPrimitives.ReadInt64LittleEndian(il.AsSpan(position)));
                        position += 8;
                        break;
                    case OperandType.InlineR:
                        text.Append(' ').Append(BinaryPrimitives.ReadDoubleLittleEndian(il.AsSpan(position)).ToString("R", CultureInfo.InvariantCulture));
                        position += 8;
                        break;
                    case OperandType.InlineSwitch:
                        var count = BinaryPrimitives.ReadInt32LittleEndian(il.AsSpan(position));
                        position += 4;
                        for (var i = 0; i < count; i++, position += 4)
                        {
                            text.Append(' ').Append(BinaryPrimitives.ReadInt32LittleEndian(il.AsSpan(position)));
                        }

                        break;
                    case OperandType.InlineString:
                        var literal = module.ResolveString(ReadToken(il, position));
                        text.Append(' ').Append(literal.Length).Append(" \"").Append(literal).Append('"');
                        position += 4;
                        break;
                    case OperandType.InlineSig:
                        text.Append(' ').Append(Convert.ToHexString(module.ResolveSignature(ReadToken(il, position))));
                        position += 4;
                        break;
                    default:
                        // InlineField, InlineMethod, InlineType, InlineTok: a member, by name rather than by token.
                        text.Append(' ').Append(ResolveToken(module, ReadToken(il, position), typeArguments, methodArguments));
                        position += 4;
                        break;
                }

                text.Append('\n');
            }
        }

        private static int ReadToken(byte[] il, int position) => BinaryPrimitives.ReadInt32LittleEndian(il.AsSpan(position));

        [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = TrimmedIl)]
        private string ResolveToken(Module module, int token, Type[]? typeArguments, Type[]? methodArguments)
        {
            MemberInfo member;
            try
            {
                member = module.ResolveMember(token, typeArguments, methodArguments)!;
            }
            catch (Exception ex) when (ex is ArgumentException or BadImageFormatException or TypeLoadException or MissingMemberException)
            {
                // Rare (a reference the runtime cannot load): keep what identifies it without the shifting token value.
                return "unresolved " + ex.GetType().Name;
            }

            switch (member)
            {
                case Type type:
                    return "type " + TypeName(type);
                case MethodBase method:
                    // Lambdas, local functions and closure constructors are part of the body that references them;
                    // ordinary methods (helpers, steps, the framework) are not followed.
                    if (method.Module == module && (IsGeneratedName(method.Name) || (method.DeclaringType is { } owner && IsGenerated(owner))))
                    {
                        Visit(method is MethodInfo { IsGenericMethod: true, IsGenericMethodDefinition: false } info ? info.GetGenericMethodDefinition() : method);
                    }

                    return Member(method);
                case FieldInfo field:
                    return "field " + TypeName(field.DeclaringType) + "::" + Name(TypeName(field.DeclaringType), field.Name) + " " + TypeName(field.FieldType);
                default:
                    return member.MemberType + " " + TypeName(member.DeclaringType) + "::" + member.Name;
            }
        }

        private static bool IsGeneratedName(string name) => name.Contains('<', StringComparison.Ordinal);

        private static bool IsGenerated(Type type)
        {
            for (Type? t = type; t is not null; t = t.DeclaringType)
            {
                if (IsGeneratedName(t.Name) || t.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false))
                {
                    return true;
                }
            }

            return false;
        }

        private string Member(MethodBase method)
        {
            var owner = TypeName(method.DeclaringType);
            var member = new StringBuilder(owner).Append("::").Append(Name(owner, method.Name));
            if (method is MethodInfo { IsGenericMethod: true } generic)
            {
                member.Append('[').AppendJoin(',', generic.GetGenericArguments().Select(TypeName)).Append(']');
            }

            member.Append('(').AppendJoin(',', method.GetParameters().Select(p => TypeName(p.ParameterType))).Append(')');
            if (method is MethodInfo withResult)
            {
                member.Append(' ').Append(TypeName(withResult.ReturnType));
            }

            return member.ToString();
        }

        /// <summary>A type's full name, with compiler-generated names (and their shifting ordinals) renumbered.</summary>
        private string TypeName(Type? type)
        {
            switch (type)
            {
                case null:
                    return "?";
                case { IsGenericParameter: true }:
                    return (type.DeclaringMethod is null ? "!" : "!!") + type.GenericParameterPosition.ToString(CultureInfo.InvariantCulture);
                case { IsArray: true }:
                    return TypeName(type.GetElementType()) + "[" + new string(',', type.GetArrayRank() - 1) + "]";
                case { IsByRef: true }:
                    return TypeName(type.GetElementType()) + "&";
                case { IsPointer: true }:
                    return TypeName(type.GetElementType()) + "*";
                case { IsGenericType: true, IsGenericTypeDefinition: false }:
                    return TypeName(type.GetGenericTypeDefinition()) + "[" + string.Join(",", type.GetGenericArguments().Select(TypeName)) + "]";
            }

            if (type.DeclaringType is { } declaring)
            {
                var owner = TypeName(declaring);
                return owner + "+" + Name(owner, type.Name);
            }

            return Name(type.Namespace ?? string.Empty, type.Namespace is null ? type.Name : type.Namespace + "." + type.Name);
        }

        private string Name(string owner, string name)
        {
            if (!IsGeneratedName(name))
            {
                return name;
            }

            var key = owner + "::" + name;
            if (!generatedNames.TryGetValue(key, out var number))
            {
                number = generatedNames.Count;
                generatedNames.Add(key, number);
            }

            return "<#" + number.ToString(CultureInfo.InvariantCulture) + ">";
        }
    }
}
